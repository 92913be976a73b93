"""Benchmark decoding AIA-like files: astropy alone against the RICE fast path (rice.py).

The same N AIA-like 4096x4096 int16 RICE files as benchmarks/burst.py (its cache), decoded
in one process, in one run, both ways, each file ``--repeats`` times with the two ways taking
turns. Two tile layouts: the archive's 64x64 tiles, and AIA level 1's own rows
(ZTILE1=4096, ZTILE2=1), made from the same images in memory. Two steps for each:

* pixels: the compressed tiles to the scaled array, on an HDU already opened
  (astropy's ``hdu.data`` against ``rice.decode``);
* decode_image: the whole of what a burst task does per file, header parsing included
  (``decode_image(data, fast=False)`` against ``decode_image(data)``).

Every file's pixels (values and dtype) and header must be IDENTICAL both ways, and the fast
path must have been taken. Target: adopt only with identical output and decode_image at
least 1.10x astropy's speed on both layouts.

    .venv/bin/python benchmarks/decode.py [--files 6] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from burst import CACHE, DISTINCT, archive  # noqa: E402

from platform_tools.burst import rice  # noqa: E402
from platform_tools.burst.worker import decode_image  # noqa: E402

TARGET = 1.10


def image_hdu(data: bytes) -> fits.CompImageHDU:
    """The file's compressed image HDU, opened and its data not yet decoded."""
    hdul = fits.open(io.BytesIO(data), memmap=False)
    return hdul[1]


def row_tiled(data: bytes) -> bytes:
    """The same image and header with AIA level 1's tiles: one image row each."""
    pixels, header = decode_image(data, fast=False)
    out = io.BytesIO()
    hdu = fits.CompImageHDU(pixels, header=header, compression_type="RICE_1", tile_shape=(1, pixels.shape[1]))
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out)
    return out.getvalue()


def identical(data: bytes) -> bool:
    """Same pixels, dtype and header both ways, and the fast path really taken."""
    a_pixels, a_header = decode_image(data, fast=False)
    b_pixels, b_header = decode_image(data)
    taken = rice.decode(image_hdu(data), data) is not None
    return (
        taken
        and a_pixels.dtype == b_pixels.dtype
        and np.array_equal(a_pixels, b_pixels)
        and a_header.tostring() == b_header.tostring()
    )


def timed(func, data: bytes) -> float:
    started = time.perf_counter()
    func(data)
    return time.perf_counter() - started


def timed_pixels(decode, data: bytes) -> float:
    hdu = image_hdu(data)  # opening is not part of this step
    started = time.perf_counter()
    pixels = decode(hdu, data)
    seconds = time.perf_counter() - started
    assert pixels is not None
    return seconds


WAYS = {
    "pixels": {
        "astropy": lambda data: timed_pixels(lambda hdu, _: np.asarray(hdu.data), data),
        "fast": lambda data: timed_pixels(rice.decode, data),
    },
    "decode_image": {
        "astropy": lambda data: timed(lambda d: decode_image(d, fast=False), data),
        "fast": lambda data: timed(decode_image, data),
    },
}


def measure(blobs: list[bytes], repeats: int) -> dict[str, dict[str, float]]:
    """Median ms per file for each step and way; the two ways alternate, file by file."""
    times = {step: {way: [] for way in ways} for step, ways in WAYS.items()}
    for repeat in range(repeats):
        for data in blobs:
            for step, ways in WAYS.items():
                order = list(ways) if repeat % 2 == 0 else list(ways)[::-1]
                for way in order:
                    times[step][way].append(ways[way](data))
    return {
        step: {way: 1000 * statistics.median(seconds) for way, seconds in ways.items()}
        for step, ways in times.items()
    }


def call_overhead_ms(tiles: int = 4096, repeats: int = 5) -> float:
    """What a file's tile loop costs without decoding: ``tiles`` calls of the routine for 0 pixels."""
    routine = rice.routines()[2]
    stream, out = np.zeros(16, np.uint8), np.zeros(1, np.int16)
    source, target = stream.ctypes.data, out.ctypes.data
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(tiles):
            routine(source, 16, target, 0, 32)
        best = min(best, time.perf_counter() - started)
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=6, help=f"distinct AIA-like files (at most {DISTINCT})")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if rice.routines() is None:
        sys.exit("imagecodecs' Rice decoder is not available here: pip install imagecodecs")
    files = min(args.files, DISTINCT)
    print(f"files: {files} AIA-like 4096x4096 int16 RICE files (benchmarks/burst.py's cache) ...", flush=True)
    archive(files)
    tiled = [(CACHE / "originals" / f"{i:02d}.fits").read_bytes() for i in range(files)]
    layouts = {"64x64 tiles (the archive)": tiled, "row tiles (AIA level 1)": [row_tiled(d) for d in tiled]}

    rows, same, ratios = [], 0, []
    for layout, blobs in layouts.items():
        same += sum(identical(data) for data in blobs)
        print(f"  {layout}: {len(blobs)} files x {args.repeats} repeats ...", flush=True)
        for step, ms in measure(blobs, args.repeats).items():
            ratio = ms["astropy"] / ms["fast"]
            rows.append((layout, step, ms["astropy"], ms["fast"], ratio))
            if step == "decode_image":
                ratios.append(ratio)
    total = sum(len(blobs) for blobs in layouts.values())

    import astropy
    import imagecodecs

    print()
    print(
        f"{files} files x 2 layouts, {args.repeats} repeats each, one process; "
        f"astropy {astropy.__version__}, imagecodecs {imagecodecs.__version__}"
    )
    print()
    print("| layout | step | astropy ms/file | fast path ms/file | astropy / fast |")
    print("| --- | --- | ---: | ---: | ---: |")
    for layout, step, a, b, ratio in rows:
        print(f"| {layout} | {step} | {a:.0f} | {b:.0f} | {ratio:.2f} |")
    print()
    print(f"identical pixels, dtype and header, fast path taken: {same}/{total} files")
    overhead = call_overhead_ms()
    fastest = min(b for layout, step, a, b, ratio in rows if step == "pixels")
    print(
        f"the Python tile loop (4096 calls, no decoding): {overhead:.1f} ms per file, "
        f"{100 * overhead / fastest:.0f}% of the fast path's pixels step"
    )
    verdict = same == total and min(ratios) >= TARGET
    print(
        f"target: decode_image >= {TARGET:.2f}x astropy on both layouts with identical output: "
        f"{'met' if verdict else 'NOT met'} (worst {min(ratios):.2f}x)"
    )
    print(json.dumps({f"{layout} / {step}": round(ratio, 3) for layout, step, *_, ratio in rows}))


if __name__ == "__main__":
    main()
