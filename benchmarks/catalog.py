"""Benchmark a CloudCatalog time-range query: Parhelion's client against HelioCloud's.

One dataset with a year's index of N rows (default 129,758, HelioCloud's AIA year),
written by Parhelion's writer as the spec's CSV into a bucket served by a real rclone S3
server that needs no keys (as AWS serves a public Open Data bucket). The rows are
written straight into the index: the files they name need not exist to time a query.

For each query (a day, a month, the whole year), in one run on the same files:

* cold: a new client, then the first query: fetching catalog.json and the index and
  parsing it are in the time;
* warm: more queries on the same client, median of ``--repeats``.

What each client keeps between queries: Parhelion's ``CloudCatalog`` keeps the parsed
index of each (dataset, year) and asks S3 for the object's ETag before every query
(one small request), re-reading the index only when it changed. cloudcatalog's
``CloudCatalog`` with its default ``cache=False`` keeps only catalog.json and GETs
and parses the year's CSV on every query; its ``cache=True`` (shown on its own line)
keeps the CSV on local disk, never checks it against S3, and re-parses it every query.
Parhelion's HEAD is dearer here than on S3: rclone makes the ETag by hashing the whole
16 MB file on each HEAD, where S3 keeps it stored.

Both must return the same files (datakeys and start times). Targets: Parhelion's warm
query <= 0.2 s and >= 5x faster than cloudcatalog's.

    .venv/bin/python benchmarks/catalog.py [--rows 129758] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from platform_tools.catalog import CloudCatalog, IndexedFile, catalog_entry, write_dataset  # noqa: E402
from tests.platform import RcloneS3  # noqa: E402

BUCKET = "bench-catalog"
DATASET = "aia_0094"
YEAR = 2024
HELIOCLOUD_AIA_YEAR = 129_758
QUERIES = {
    "a day": ("2024-05-08T00:00:00Z", "2024-05-09T00:00:00Z"),
    "a month": ("2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z"),
    "the year": ("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
}
TARGET_SECONDS = 0.2
TARGET_RATIO = 5.0


def year_of_files(rows: int) -> list[IndexedFile]:
    """``rows`` AIA-like files evenly over the year (about every 4 minutes for 130k)."""
    start = datetime(YEAR, 1, 1)
    step = timedelta(days=366) / rows
    files = []
    for i in range(rows):
        moment = (start + i * step).replace(microsecond=0)
        key = f"s3://{BUCKET}/sdo/aia/0094/{moment:%Y/%m/%d}/aia_0094_{moment:%Y%m%dT%H%M%S}Z.fits"
        files.append(IndexedFile(moment, moment + timedelta(seconds=2.9), key, 9_300_000 + i % 4096))
    return files


def timed(func) -> tuple[float, object]:
    started = time.perf_counter()
    value = func()
    return time.perf_counter() - started, value


def parhelion_rows(frame) -> list[tuple[str, str]]:
    return list(zip(frame["datakey"], frame["start"].dt.strftime("%Y-%m-%dT%H:%M:%S"), strict=True))


def cloudcatalog_rows(frame) -> list[tuple[str, str]]:
    return list(zip(frame["datakey"], frame["start"].dt.strftime("%Y-%m-%dT%H:%M:%S"), strict=True))


def measure(make, query, repeats: int) -> tuple[float, float, object]:
    """(cold seconds: a new client and its first query, warm median, the last answer)."""
    cold, (client, answer) = timed(lambda: _first(make, query))
    warm = []
    for _ in range(repeats):
        seconds, answer = timed(lambda: query(client))
        warm.append(seconds)
    return cold, statistics.median(warm), answer


def _first(make, query):
    client = make()
    return client, query(client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=HELIOCLOUD_AIA_YEAR)
    parser.add_argument("--repeats", type=int, default=5, help="warm queries per client, median reported")
    args = parser.parse_args()

    import cloudcatalog
    import s3fs

    with tempfile.TemporaryDirectory() as scratch:
        server = RcloneS3(Path(scratch) / "s3", keyed=False)
        (server.root / BUCKET).mkdir(parents=True)
        server.start()
        try:
            options = server.storage_options
            # cloudcatalog reaches a non-AWS endpoint only through botocore's own variables
            os.environ["AWS_ENDPOINT_URL_S3"] = server.url
            os.environ["AWS_RESPONSE_CHECKSUM_VALIDATION"] = "when_required"
            files = year_of_files(args.rows)
            entry = catalog_entry(
                dataset_id=DATASET, index=f"s3://{BUCKET}/index/", title="AIA 94", files=files
            )
            seconds, _ = timed(
                lambda: write_dataset(
                    s3fs.S3FileSystem(**options), f"s3://{BUCKET}", entry, files, bucket_name=BUCKET
                )
            )
            size = (server.root / BUCKET / "index" / f"{DATASET}_{YEAR}.csv").stat().st_size
            print(f"index: {args.rows} rows, {size / 1e6:.1f} MB CSV, written in {seconds:.1f} s", flush=True)

            clients = {
                "Parhelion": (
                    lambda: CloudCatalog(f"s3://{BUCKET}", **options),
                    lambda begin, end: lambda c: c.query(DATASET, begin, end),
                    parhelion_rows,
                ),
                "cloudcatalog": (
                    lambda: cloudcatalog.CloudCatalog(f"s3://{BUCKET}"),
                    lambda begin, end: lambda c: c.request_cloud_catalog(DATASET, begin, end),
                    cloudcatalog_rows,
                ),
                "cloudcatalog cache=True": (
                    lambda: cloudcatalog.CloudCatalog(
                        f"s3://{BUCKET}", cache=True, cache_folder=str(Path(scratch) / f"cc-{time.time_ns()}")
                    ),
                    lambda begin, end: lambda c: c.request_cloud_catalog(DATASET, begin, end),
                    cloudcatalog_rows,
                ),
            }
            results = {}
            for label, (begin, end) in QUERIES.items():
                answers = {}
                for name, (make, query, rows_of) in clients.items():
                    cold, warm, answer = measure(make, query(begin, end), args.repeats)
                    answers[name] = rows_of(answer)
                    results[(label, name)] = (cold, warm, len(answer))
                    print(
                        f"  {label}, {name}: cold {cold:.3f} s, warm {warm:.3f} s, {len(answer)} rows",
                        flush=True,
                    )
                reference = answers["Parhelion"]
                for name, rows in answers.items():
                    assert rows == reference, f"{label}: {name} returned other rows than Parhelion"
        finally:
            server.stop()

    print()
    print(
        f"{args.rows} rows in one year's CSV index, rclone S3 on loopback; warm = median of "
        f"{args.repeats} queries on the same client"
    )
    print()
    print(
        "| query | rows | Parhelion cold s | Parhelion warm s | cloudcatalog cold s | cloudcatalog warm s "
        "| warm ratio | cold ratio | cloudcatalog cache=True warm s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    summary = {}
    met = True
    for label in QUERIES:
        p_cold, p_warm, count = results[(label, "Parhelion")]
        c_cold, c_warm, _ = results[(label, "cloudcatalog")]
        _, d_warm, _ = results[(label, "cloudcatalog cache=True")]
        print(
            f"| {label} | {count} | {p_cold:.3f} | {p_warm:.3f} | {c_cold:.3f} | {c_warm:.3f} "
            f"| {c_warm / p_warm:.1f}x | {c_cold / p_cold:.1f}x | {d_warm:.3f} |"
        )
        met = met and p_warm <= TARGET_SECONDS and c_warm / p_warm >= TARGET_RATIO
        summary[label] = {
            "parhelion_cold_warm": [round(p_cold, 4), round(p_warm, 4)],
            "cloudcatalog_cold_warm": [round(c_cold, 4), round(c_warm, 4)],
            "cloudcatalog_cache_warm": round(d_warm, 4),
        }
    print()
    print(
        f"targets: Parhelion's warm query <= {TARGET_SECONDS} s and >= {TARGET_RATIO:.0f}x cloudcatalog's: "
        + ("met" if met else "NOT met")
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
