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

    .venv/bin/python benchmarks/burst.py [--files 120] [--workers 2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2, help="single-threaded Dask worker processes")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    print(f"archive: {args.files} AIA-like 4096x4096 files ...", flush=True)
    root = archive(args.files)
    server = RcloneS3(root)
    server.start()
    try:
        options = server.storage_options
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
            cores = sum(client.nthreads().values())
            warm = burst_map(
                mean_rate, urls[: 2 * cores], client=client, storage_options=options, progress=False
            )
            assert warm.failures.empty, warm.failures
            recipe_task = partial(
                heliocloud_recipe,
                endpoint=server.url,
                access_key=server.ACCESS_KEY,
                secret_key=server.SECRET_KEY,
            )
            client.gather(client.map(recipe_task, urls[:cores], pure=False))

            print("runs:", flush=True)
            rows = []

            def recipe():
                return client.gather(client.map(recipe_task, urls, pure=False))

            rows.append(timed("(a) HelioCloud recipe", recipe))

            def burst():
                run = burst_map(mean_rate, urls, client=client, storage_options=options, progress=False)
                assert run.failures.empty, run.failures
                return run

            rows.append(timed("(b) Parhelion burst", burst))
            a_values, b_run = rows[0][2], rows[1][2]
            assert [round(v, 9) for v in a_values] == [round(v, 9) for v in b_run.results["value"]]

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
    print(json.dumps({k: round(v, 3) for k, v in rate.items()}))


if __name__ == "__main__":
    main()
