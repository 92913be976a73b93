"""Benchmark burst analysis against HelioCloud's recipe and against the machine's limit.

N AIA-like 4096x4096 int16 RICE tile-compressed FITS files (about 9 MB each, like AIA
level 1) are served by a local rclone S3 server. On ONE Dask cluster, in one run:

(a) HelioCloud's recipe: a task per file that makes a new boto3 session, GETs the whole
    object and decodes it (its adaptive scaling inside the timed run is left out);
(b) Parhelion's ``burst_map``: batched tasks, one filesystem per worker, concurrent
    fetches overlapped with decoding;
(c) the machine's limit: fetch-only (the same objects pulled, not decoded) and
    decode-only (the same bytes decoded from memory), on the same cores. The S3 server
    shares those cores, so the combined limit is 1 / (1/fetch_rate + 1/decode_rate).

Every run computes the same thing: each image's mean count rate. Targets: b/a >= 10,
b/c >= 0.8. The archive is made from a few distinct images (generating a 4096x4096
image takes ~1.5 s), hard-linked to N keys, and kept in benchmarks/.cache for reuse.

With ``--link 30ms,90MBps`` (a) and (b) also run, in the same run, through an emulated S3
link (tests/s3link.py: every request's first byte waits the latency, every connection is
paced to the bandwidth), as S3 would serve them. Target: b on the link >= 0.8 of b over
loopback; b/a on the link is reported as measured. The link proxy is a process of its own:
its CPU seconds are measured and printed (with ``--link-core K`` it is pinned to core K and
the Dask workers to the other cores, for machines with a core to spare).

    .venv/bin/python benchmarks/burst.py [--files 120] [--workers 2] [--link 30ms,90MBps]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from platform_tools.burst import burst_map  # noqa: E402
from platform_tools.burst.worker import decode_image  # noqa: E402
from platform_tools.local.aia_synthetic import SyntheticAIA  # noqa: E402
from tests.platform import RcloneS3  # noqa: E402
from tests.s3link import S3Link  # noqa: E402

CACHE = REPO / "benchmarks" / ".cache" / "aia-4096"
BUCKET = "bench-aia"
DISTINCT = 12
HELIOCLOUD_FILES_PER_S_PER_CORE = 0.44  # 129,758 files in 25 min on up to 50 x 4 cores


def archive(files: int) -> Path:
    """benchmarks/.cache/aia-4096/<bucket>/aia/...: N keys over DISTINCT generated images."""
    originals = CACHE / "originals"
    originals.mkdir(parents=True, exist_ok=True)
    series = SyntheticAIA(size=4096, wavelength=94, start=datetime(2024, 5, 8), cadence=timedelta(minutes=12))
    for i in range(DISTINCT):
        path = originals / f"{i:02d}.fits"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(series.fits_bytes(i))
            tmp.replace(path)
    root = CACHE / "s3"
    folder = root / BUCKET / "aia"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        key = folder / f"aia_0094_{series.time_of(i):%Y%m%dT%H%M%S}Z.fits"
        if not key.exists():
            os.link(originals / f"{i % DISTINCT:02d}.fits", key)
    return root


def mean_rate(image, header) -> float:
    return float(image.mean()) / header["EXPTIME"]


def heliocloud_recipe(url: str, endpoint: str, access_key: str, secret_key: str) -> float:
    """One file as HelioCloud's demo does it: a new boto3 session, a whole-object GET."""
    import boto3
    from astropy.io import fits
    from botocore.config import Config

    session = boto3.session.Session()
    s3 = session.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(response_checksum_validation="when_required"),
    )
    bucket, name = url[len("s3://") :].split("/", 1)
    body = s3.get_object(Bucket=bucket, Key=name)["Body"].read()
    with fits.open(io.BytesIO(body)) as hdul:
        return float(hdul[1].data.mean()) / hdul[1].header["EXPTIME"]


def decode_many(blobs: list[bytes], count: int, start: int) -> int:
    for i in range(count):
        mean_rate(*decode_image(blobs[(start + i) % len(blobs)]))
    return count


def timed(label: str, func) -> tuple[str, float, object]:
    started = time.perf_counter()
    value = func()
    seconds = time.perf_counter() - started
    print(f"  {label}: {seconds:.1f} s", flush=True)
    return label, seconds, value


def rounded(values) -> list[float]:
    """A run's values (a list, or a burst_map result's value column), to compare runs."""
    column = values.results["value"] if hasattr(values, "results") else values
    return [round(v, 9) for v in column]


def link_shape(text: str) -> tuple[float, float]:
    """'30ms,90MBps' -> (0.030 s of first-byte latency, 90e6 bytes/s per connection)."""
    found = re.fullmatch(r"\s*([\d.]+)\s*ms\s*,\s*([\d.]+)\s*MB/?ps\s*", text, re.IGNORECASE)
    if not found:
        raise argparse.ArgumentTypeError(f"expected e.g. 30ms,90MBps, not {text!r}")
    return float(found[1]) / 1e3, float(found[2]) * 1e6


def pin_workers(client, cores: set[int]) -> None:
    """Every Dask worker process on ``cores`` only (so a pinned link proxy has its own core)."""
    client.run(os.sched_setaffinity, 0, cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2, help="single-threaded Dask worker processes")
    parser.add_argument(
        "--link", type=link_shape, help="also run (a) and (b) through an emulated S3 link, e.g. 30ms,90MBps"
    )
    parser.add_argument(
        "--link-core", type=int, help="pin the link proxy to this core and the Dask workers to the others"
    )
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    print(f"archive: {args.files} AIA-like 4096x4096 files ...", flush=True)
    root = archive(args.files)
    server = RcloneS3(root)
    server.start()
    link = None
    try:
        options = server.storage_options
        if args.link:
            cpus = {args.link_core} if args.link_core is not None else None
            link = S3Link(server.url, *args.link, cpus=cpus).start()
        import s3fs

        fs = s3fs.S3FileSystem(**options)
        urls = sorted(f"s3://{p}" for p in fs.ls(f"{BUCKET}/aia"))[: args.files]
        size = sum(fs.info(u)["size"] for u in urls)
        per_file_mb = size / len(urls) / 1e6
        print(f"  {len(urls)} files, {size / 1e9:.2f} GB ({per_file_mb:.1f} MB each)")
        with (
            tempfile.TemporaryDirectory() as scratch,
            LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
                memory_limit="3GiB",
                local_directory=scratch,
            ) as cluster,
            Client(cluster) as client,
        ):
            if args.link_core is not None:
                pin_workers(client, (os.sched_getaffinity(0) - {args.link_core}) or {args.link_core})
            cores = sum(client.nthreads().values())

            def recipe_task(endpoint):
                return partial(
                    heliocloud_recipe,
                    endpoint=endpoint,
                    access_key=server.ACCESS_KEY,
                    secret_key=server.SECRET_KEY,
                )

            def warm(store_options, endpoint):
                run = burst_map(
                    mean_rate, urls[: 2 * cores], client=client, storage_options=store_options, progress=False
                )
                assert run.failures.empty, run.failures
                client.gather(client.map(recipe_task(endpoint), urls[:cores], pure=False))

            def recipe(endpoint):
                return lambda: client.gather(client.map(recipe_task(endpoint), urls, pure=False))

            def burst(store_options):
                def run_it():
                    run = burst_map(
                        mean_rate, urls, client=client, storage_options=store_options, progress=False
                    )
                    assert run.failures.empty, run.failures
                    return run

                return run_it

            warm(options, server.url)
            linked = {}
            estimates = []  # (run, its BurstReport): the plan's estimate against the run

            def through_link(label: str, run) -> None:
                """``run`` through the link, timed, with the proxy's CPU seconds and counters."""
                cpu = link.cpu_seconds()
                _, seconds, value = timed(f"{label} through the link", run)
                linked[label] = (seconds, link.cpu_seconds() - cpu, link.stats())
                if hasattr(value, "report"):
                    estimates.append((f"{label}, through the link", value.report))
                assert rounded(value) == rounded(a_values)

            if link:
                link_options = link.storage_options(options)
                warm(link_options, link.url)
                link.stats()
            print("runs:", flush=True)
            rows = []
            rows.append(timed("(a) HelioCloud recipe", recipe(server.url)))
            a_values = rows[0][2]
            rows.append(timed("(b) Parhelion burst", burst(options)))
            assert rounded(rows[1][2]) == rounded(a_values)
            estimates.append(("(b) Parhelion burst, loopback", rows[1][2].report))
            if link:  # next to their loopback runs, so a busy machine skews both alike
                through_link("(b) Parhelion burst", burst(link_options))
                through_link("(a) HelioCloud recipe", recipe(link.url))

            def fetch_only():
                run = burst_map(
                    len, urls, client=client, storage_options=options, reader="bytes", progress=False
                )
                assert run.failures.empty
                return run

            rows.append(timed("fetch only", fetch_only))
            blobs = [fs.cat_file(u) for u in urls[:DISTINCT]]
            shared = client.scatter(blobs, broadcast=True)
            chunks = [
                len(urls) // (3 * cores) + (1 if i < len(urls) % (3 * cores) else 0) for i in range(3 * cores)
            ]
            starts = [sum(chunks[:i]) for i in range(len(chunks))]

            def decode_only():
                return sum(
                    client.gather(client.map(decode_many, [shared] * len(chunks), chunks, starts, pure=False))
                )

            rows.append(timed("decode only", decode_only))
    finally:
        if link:
            link.stop()
        server.stop()

    n = len(urls)
    rate = {label: n / seconds for label, seconds, _ in rows}
    fetch, decode = rate["fetch only"], rate["decode only"]
    rate["(c) combined limit"] = 1 / (1 / fetch + 1 / decode)
    print()
    print(
        f"{n} files of {per_file_mb:.1f} MB on {cores} cores ({args.workers} workers x 1 thread); "
        "the S3 server on the same cores"
    )
    print()
    print("| run | files/s | MB/s | files/s per core |")
    print("| --- | ---: | ---: | ---: |")
    for label, value in rate.items():
        print(f"| {label} | {value:.2f} | {value * per_file_mb:.1f} | {value / cores:.2f} |")
    b = rate["(b) Parhelion burst"]
    print()
    print(f"b/a = {b / rate['(a) HelioCloud recipe']:.2f} (target >= 10)")
    print(f"b/c = {b / rate['(c) combined limit']:.2f} (target >= 0.8)")
    print(
        f"b per core vs HelioCloud's published {HELIOCLOUD_FILES_PER_S_PER_CORE} files/s per core: "
        f"{b / cores / HELIOCLOUD_FILES_PER_S_PER_CORE:.1f}x"
    )
    print()
    print("| burst_map's plan (made inside the run) | estimated s | actual s | estimated/actual |")
    print("| --- | ---: | ---: | ---: |")
    for label, report in estimates:
        estimated = report.plan.seconds
        print(f"| {label} | {estimated:.1f} | {report.seconds:.1f} | {estimated / report.seconds:.2f} |")
    print("(target: within 30%; the actual includes the pilot, whose files the run does not repeat)")
    summary = {k: round(v, 3) for k, v in rate.items()}
    if linked:
        summary["link"] = link_table(n, cores, rate, linked, link, args.link_core)
    print(json.dumps(summary))


def link_table(n: int, cores: int, rate: dict, linked: dict, link: S3Link, core: int | None) -> dict:
    """Prints (a) and (b) over loopback and through the link side by side; returns the figures."""
    shape = f"link ({link.latency * 1e3:g} ms, {link.bandwidth / 1e6:g} MB/s)"
    over = {label: n / linked[label][0] for label in ("(a) HelioCloud recipe", "(b) Parhelion burst")}
    print()
    print(f"| files/s | loopback | {shape} | link/loopback |")
    print("| --- | ---: | ---: | ---: |")
    for label, value in over.items():
        print(f"| {label} | {rate[label]:.2f} | {value:.2f} | {value / rate[label]:.2f} |")
    a, b = over["(a) HelioCloud recipe"], over["(b) Parhelion burst"]
    print()
    print(f"on the link: b/a = {b / a:.2f}")
    print(f"b(link)/b(loopback) = {b / rate['(b) Parhelion burst']:.2f} (target >= 0.8)")
    placement = (
        f"pinned to core {core}, the Dask workers on the others"
        if core is not None
        else "not pinned: it shares the cores with the workers and the S3 server"
    )
    print(f"link proxy ({placement}):")
    for label in over:
        seconds, cpu, stats = linked[label]
        print(
            f"  {label}: {cpu:.2f} CPU s over {seconds:.1f} s = {cpu / seconds / cores:.1%} of the "
            f"{cores} cores; {stats['requests']} requests on {stats['connections']} connections, "
            f"at most {stats['peak_open']} open"
        )
    return {
        "a": round(a, 3),
        "b": round(b, 3),
        "proxy_cpu_s": {label: round(cpu, 2) for label, (_, cpu, _) in linked.items()},
    }


if __name__ == "__main__":
    main()
