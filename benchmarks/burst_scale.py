"""Benchmark how burst's orchestration cost grows from 1k to HelioCloud's 129,758 files.

An archive of 129,758 tiny objects (a 2880-byte FITS primary header each, one per AIA
94 A cadence step through 2024, in per-day folders) is served by a real rclone S3 server
and indexed as a CloudCatalog dataset by the project's writer. For 1k, 10k and 129,758
files, in one run on one cluster (a scheduler process and single-threaded worker
processes, all on this machine's cores with the S3 server):

* query: ``CloudCatalog.query`` for the time range holding exactly that many files, on a
  new client (nothing cached);
* pilot: ``burst_map``'s pricing pilot (``burst_plan``), part of the total;
* plan and submit: from ``BurstReport`` (``plan_seconds``, ``submit_seconds``);
* total: ``burst_map`` with a cheap function over the bytes (reader="bytes"), streaming
  its results to a parquet dataset (``output=``);
* orchestration overhead per file (idle ms/file, the target's measure): the run's wall
  time minus the worker threads' busy time (the compute time of every burst task, from
  Dask's task stream, over the threads) per file: what the cluster spent not running
  the job's tasks (pricing pilot's warm-up, planning, submitting, scheduling gaps,
  gathering, the last tasks' tail, the retry round). Measured in the run itself, so
  the machine's load moves it little;
* client CPU ms/file: this process's CPU time in ``burst_map`` per file (the scheduler
  is a process of its own), the client's per-file Python cost;
* over floor ms/file, for comparison: (total - fetch floor) / files, where the floor is
  the same objects fetched by the same workers with the same filesystem and concurrency
  in one plain task per worker thread (no batches, no outcomes, no results), timed on
  the size's first (up to 5000) files just before its run and scaled to the size;
* scheduler peak: the scheduler process's peak RSS during the run minus its RSS before
  (Linux VmHWM, reset through /proc/self/clear_refs before each run); client peak the
  same for this process;
* results gathered (read back from the parquet parts, timed apart), and the progress
  bar's largest step (a fraction of the files) and largest gap between updates (seconds).

Targets: overhead per file at 129,758 within 2x of that at 1k; client memory bounded
(results streamed, not held: about the same at 10k and 129,758); the bar never stalls
(largest gap between updates <= 1 s) and from 10k files on moves in steps of at most
1/200 of the files. The archive is written once to benchmarks/.cache/burst-scale and reused.

    .venv/bin/python benchmarks/burst_scale.py [--sizes 1000,10000,129758] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from platform_tools.burst import burst_map  # noqa: E402
from platform_tools.burst.worker import filesystem  # noqa: E402
from platform_tools.catalog import CloudCatalog, IndexedFile, catalog_entry, write_dataset  # noqa: E402
from tests.platform import RcloneS3  # noqa: E402

CACHE = REPO / "benchmarks" / ".cache" / "burst-scale"
BUCKET = "bench-scale"
TOTAL = 129_758  # HelioCloud's published AIA run
START = datetime(2024, 1, 1)
CADENCE = timedelta(seconds=240)  # 129,758 steps of 4 minutes fit in 2024


def moment(i: int) -> datetime:
    return START + i * CADENCE


def key(i: int) -> str:
    t = moment(i)
    return f"aia/{t:%Y/%m/%d}/aia_0094_{t:%Y%m%dT%H%M%S}Z.fits"


def header(i: int) -> bytes:
    """A FITS primary header (no data): 36 cards of 80 characters, 2880 bytes."""
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                   16",
        "NAXIS   =                    0",
        f"DATE-OBS= '{moment(i):%Y-%m-%dT%H:%M:%S}.00'",
        "WAVELNTH=                   94",
        "EXPTIME =                 2.9 ",
        "END",
    ]
    text = "".join(card.ljust(80) for card in cards)
    return text.ljust(2880).encode("ascii")


def archive() -> Path:
    """benchmarks/.cache/burst-scale/s3/<bucket>/aia/...: TOTAL headers, written once."""
    root = CACHE / "s3"
    done = CACHE / f"complete-{TOTAL}"
    if done.exists():
        return root
    started = time.perf_counter()
    folders: set[Path] = set()
    for i in range(TOTAL):
        path = root / BUCKET / key(i)
        if path.parent not in folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            folders.add(path.parent)
        path.write_bytes(header(i))
    done.touch()
    print(f"  wrote {TOTAL} objects in {time.perf_counter() - started:.0f} s", flush=True)
    return root


def write_catalog(options: dict) -> CloudCatalog:
    """The dataset's catalog.json and year index, through S3 with the project's writer."""
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    if not fs.exists(f"s3://{BUCKET}/catalog.json"):
        rows = [
            IndexedFile(moment(i), moment(i) + timedelta(seconds=2.9), f"s3://{BUCKET}/{key(i)}", 2880)
            for i in range(TOTAL)
        ]
        entry = catalog_entry(
            dataset_id="aia_0094", index=f"s3://{BUCKET}/index/", title="AIA 94", files=rows
        )
        write_dataset(fs, f"s3://{BUCKET}", entry, rows, bucket_name=BUCKET)
    return CloudCatalog(f"s3://{BUCKET}", **options)


def date_obs(data: bytes) -> str:
    """The cheap function: DATE-OBS from the header's bytes."""
    at = data.index(b"DATE-OBS= '") + 11
    return data[at : at + 19].decode()


def fetch_only(urls: list[str], storage_options: dict, concurrency: int) -> int:
    """The floor: fetch ``urls`` ``concurrency`` at a time with the worker's filesystem."""
    fs = filesystem(urls[0], storage_options)
    fetched = 0
    for i in range(0, len(urls), concurrency):
        fetched += sum(len(v) for v in fs.cat(urls[i : i + concurrency], on_error="raise").values())
    return fetched


def peak_reset() -> int:
    """This process's RSS in bytes, after resetting its peak (VmHWM) to it."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def peak() -> int:
    return _status("VmHWM")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class Steps:
    """The progress callback: when and how far the bar moved."""

    def __init__(self):
        self.marks: list[tuple[float, int]] = []
        self.lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        with self.lock:
            self.marks.append((time.perf_counter(), done))

    def largest(self, started: float, ended: float, total: int) -> tuple[float, float]:
        times = [started, *[t for t, _ in self.marks], ended]
        counts = [0, *[n for _, n in self.marks]]
        step = max(b - a for a, b in zip(counts, counts[1:], strict=False)) / total
        gap = max(b - a for a, b in zip(times, times[1:], strict=False))
        return step, gap


def one_size(client, catalog: CloudCatalog, options: dict, files: int, sample: int, scratch: str) -> dict:
    from distributed import get_task_stream

    floor_rate = measure_floor(client, catalog, options, min(sample, files))  # just before: same load
    started = time.perf_counter()
    query = CloudCatalog(catalog.url, **options).query("aia_0094", START, moment(files))  # cold: a new client
    query_seconds = time.perf_counter() - started
    assert len(query) == files, (len(query), files)
    scheduler_before = client.run_on_scheduler(peak_reset)
    client_before = peak_reset()
    steps = Steps()
    output = os.path.join(scratch, f"run-{files}.parquet")
    with get_task_stream(client) as stream:
        started, cpu = time.perf_counter(), time.process_time()
        run = burst_map(
            date_obs,
            query,
            client=client,
            storage_options=options,
            reader="bytes",
            progress=steps,
            output=output,
        )
        total, cpu = time.perf_counter() - started, time.process_time() - cpu
    client_peak = peak() - client_before
    scheduler_peak = client.run_on_scheduler(peak) - scheduler_before
    step, gap = steps.largest(started, started + total, files)
    busy = sum(
        part["stop"] - part["start"]
        for record in stream.data
        for part in record["startstops"]
        if part["action"] == "compute"
    )
    threads = sum(client.nthreads().values())
    read = time.perf_counter()
    gathered = len(run.results)
    read_seconds = time.perf_counter() - read
    assert gathered == files and run.failures.empty, run.failures.head()
    assert run.results["value"].iloc[-1] == f"{moment(files - 1):%Y-%m-%dT%H:%M:%S}"
    floor = files / floor_rate
    return {
        "files": files,
        "query_s": query_seconds,
        "pilot_s": run.report.plan.pilot_seconds,
        "estimated_s": run.report.plan.seconds,
        "plan_s": run.report.plan_seconds,
        "submit_s": run.report.submit_seconds,
        "total_s": total,
        "idle_ms_per_file": (total - busy / threads) / files * 1e3,
        "client_cpu_ms_per_file": cpu / files * 1e3,
        "floor_s": floor,
        "over_floor_ms_per_file": (total - floor) / files * 1e3,
        "tasks": run.report.tasks,
        "scheduler_peak_mb": scheduler_peak / 1e6,
        "client_peak_mb": client_peak / 1e6,
        "gathered": gathered,
        "read_back_s": read_seconds,
        "largest_step": step,
        "largest_gap_s": gap,
    }


def measure_floor(client, catalog: CloudCatalog, options: dict, sample: int, concurrency: int = 16) -> float:
    """Files per second the workers fetch with no orchestration, on ``sample`` files."""
    urls = list(catalog.query("aia_0094", START, moment(sample))["datakey"])
    threads = sum(client.nthreads().values())
    task = partial(fetch_only, storage_options=options, concurrency=concurrency)
    client.gather(client.map(task, [urls[i::threads][:64] for i in range(threads)], pure=False))  # warm
    started = time.perf_counter()
    client.gather(client.map(task, [urls[i::threads] for i in range(threads)], pure=False))
    return sample / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=f"1000,10000,{TOTAL}")
    parser.add_argument("--workers", type=int, default=2, help="single-threaded Dask worker processes")
    parser.add_argument("--floor-sample", type=int, default=5000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from distributed import Client
    from distributed.deploy.subprocess import SubprocessCluster

    print(f"archive: {TOTAL} header-only objects ...", flush=True)
    root = archive()
    server = RcloneS3(root, dir_cache_time="1h")  # a static archive: no re-listing per GET
    server.start()
    rows = []
    try:
        options = server.storage_options
        catalog = write_catalog(options)
        with (
            tempfile.TemporaryDirectory() as scratch,
            SubprocessCluster(
                host="127.0.0.1",
                n_workers=args.workers,
                threads_per_worker=1,
                dashboard_address=None,
                worker_kwargs={"memory_limit": "2GiB", "local_directory": scratch},
            ) as cluster,
            Client(cluster) as client,
        ):
            client.wait_for_workers(args.workers)
            warm = burst_map(
                date_obs, catalog.query("aia_0094", START, moment(200)), client=client,
                storage_options=options, reader="bytes", progress=False,
            )  # fmt: skip
            assert warm.failures.empty
            for files in sizes:
                row = one_size(client, catalog, options, files, args.floor_sample, scratch)
                print(f"  {files} files: {row['total_s']:.1f} s (floor {row['floor_s']:.1f} s)", flush=True)
                rows.append(row)
    finally:
        server.stop()

    print()
    print(
        f"header-only objects (2880 B) on {args.workers} single-threaded workers, a scheduler process and "
        f"the S3 server on the same cores"
    )
    print()
    print(
        "| files | query s | pilot s | plan s | submit s | total s | idle ms/file | client CPU ms/file "
        "| fetch floor s "
        "| over floor ms/file | tasks | scheduler peak MB | client peak MB | gathered | read back s "
        "| largest step | largest gap s |"
    )
    print("| ---: " * 17 + "|")
    for r in rows:
        cells = [
            f"{r['files']:,}",
            f"{r['query_s']:.2f}",
            f"{r['pilot_s']:.2f}",
            f"{r['plan_s']:.3f}",
            f"{r['submit_s']:.3f}",
            f"{r['total_s']:.1f}",
            f"{r['idle_ms_per_file']:.3f}",
            f"{r['client_cpu_ms_per_file']:.3f}",
            f"{r['floor_s']:.1f}",
            f"{r['over_floor_ms_per_file']:.3f}",
            str(r["tasks"]),
            f"{r['scheduler_peak_mb']:.0f}",
            f"{r['client_peak_mb']:.0f}",
            f"{r['gathered']:,}",
            f"{r['read_back_s']:.2f}",
            f"{r['largest_step']:.4f}",
            f"{r['largest_gap_s']:.2f}",
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    print("| files | burst_map's plan: estimated s | actual s | estimated/actual |")
    print("| ---: | ---: | ---: | ---: |")
    for r in rows:
        estimate = f"{r['estimated_s']:.1f} | {r['total_s']:.1f} | {r['estimated_s'] / r['total_s']:.2f}"
        print(f"| {r['files']:,} | {estimate} |")
    first, last = rows[0], rows[-1]
    ratio = last["idle_ms_per_file"] / first["idle_ms_per_file"]
    print()
    print(
        f"orchestration overhead (idle ms/file) at {last['files']:,} / at {first['files']:,} = {ratio:.2f} "
        "(target <= 2)"
    )
    big = [r["largest_step"] for r in rows if r["files"] >= 10_000]
    if big:
        print(f"largest bar step from 10k files on {max(big):.4f} of the files (target <= 0.005)")
    print(f"largest gap between bar updates {max(r['largest_gap_s'] for r in rows):.2f} s (target <= 1)")
    print(json.dumps(rows, default=float))


if __name__ == "__main__":
    main()
