"""Benchmark the storage quota's walk: every home measured once, as the accounting service does.

N homes of M small files each (in folders of 50) are written to a temp folder; the service's
own gauge (``accounting.storage.StorageGauge``) then walks them all in a worker thread, twice
(the second with the file system's caches warm, as every pass after the first is), while
the event loop measures how late its timers fire (the checks the hub waits on run there).
Printed: entries walked, seconds per pass, the loop's lag, and the cadence the service then
keeps (passes at most 5% of its time).

    .venv/bin/python benchmarks/storage.py [--homes 500] [--files 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from platform_tools.accounting.storage import MAX_DUTY, StorageGauge  # noqa: E402


def make_homes(root: Path, homes: int, files: int) -> dict[str, Path]:
    found = {}
    for number in range(homes):
        home = root / f"user{number}"
        for folder in range(max(1, files // 50)):
            target = home / f"project{folder}" / "data"
            target.mkdir(parents=True)
            for index in range(min(50, files)):
                (target / f"file{index}.txt").write_bytes(b"x" * 100)
        found[home.name] = home
    return found


async def one_pass(gauge: StorageGauge) -> tuple[float, float, float]:
    """(pass seconds, median and largest event-loop lag in ms) for one walk of every home."""
    task = asyncio.create_task(asyncio.to_thread(gauge.measure_all))
    lags = []
    while not task.done():
        started = time.monotonic()
        await asyncio.sleep(0.01)
        lags.append(time.monotonic() - started - 0.01)
    await task
    lags.sort()
    return gauge.pass_seconds, 1000 * lags[len(lags) // 2], 1000 * lags[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homes", type=int, default=500)
    parser.add_argument("--files", type=int, default=200, help="files per home")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parhelion-storage-bench-") as folder:
        started = time.monotonic()
        homes = make_homes(Path(folder), args.homes, args.files)
        print(f"wrote {args.homes} homes x {args.files} files in {time.monotonic() - started:.1f} s")
        gauge = StorageGauge(lambda config: homes, lambda: None)
        print("| pass | homes | entries | GiB | seconds | loop lag p50 | loop lag max | cadence at 5% |")
        print("|---|---|---|---|---|---|---|---|")
        for name in ("first", "warm"):
            seconds, median, largest = asyncio.run(one_pass(gauge))
            entries = sum(size.files for size in gauge.sizes.values())
            used = sum(size.used_bytes for size in gauge.sizes.values()) / 2**30
            print(
                f"| {name} | {len(gauge.sizes)} | {entries} | {used:.2f} | {seconds:.2f} | "
                f"{median:.1f} ms | {largest:.1f} ms | >= {seconds / MAX_DUTY:.0f} s |"
            )


if __name__ == "__main__":
    main()
