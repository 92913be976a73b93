"""A faster decoder for RICE_1 tile-compressed integer images, giving astropy's exact answer.

AIA level-1 files are int16 images of 4096 RICE-compressed tiles; astropy decodes them with
cfitsio's Rice routine, with several Python steps and buffer copies per tile. imagecodecs
ships the same routine (cfitsio's ricecomp.c), measured faster here as built, and this path
calls it once per tile straight into the output array: decode_image of a 4096x4096 AIA-like
file runs about 1.5x as fast, the tile loop itself ~1% of that (benchmarks/decode.py).

The rule: this path answers only where its answer is astropy's, pixel for pixel and header
for header; for anything else ``decode`` returns None and astropy decodes the HDU as before.
Accepted: a 2-D CompImageHDU with ZCMPTYPE RICE_1, ZBITPIX 8, 16 or 32 with BYTEPIX equal to
it, BLOCKSIZE 16 or 32, explicit ZTILEn (edge tiles may be partial), one COMPRESSED_DATA
column (so no ZSCALE/ZZERO quantisation, ZBLANK column, GZIP_COMPRESSED_DATA or
UNCOMPRESSED_DATA fallback, NULL_PIXEL_MASK), and every tile decoding cleanly. BSCALE,
BZERO and BLANK are then applied by astropy's own code on the HDU, so the output dtype,
values and header are those astropy gives.

Why ctypes and not ``imagecodecs.rcomp_decode``: that wrapper ignores the routine's "unused
bytes at end of compressed buffer" code, which astropy raises as an error. A corrupt tile
can end early that way; rcomp_decode would return its pixels where astropy says the file
is corrupt. Calling the routine imagecodecs exports keeps that code, and any code but OK
hands the file back to astropy (which then raises, so the caller sees the same
DecodeError). The routine is checked once per process against rcomp_decode on a probe
tile; if imagecodecs is missing or anything disagrees, this path is off.
"""

from __future__ import annotations

import ctypes
import functools
import re

import numpy as np

RCOMP_OK = 0
RCOMP_WARN_UNUSED = -4
_DTYPES = {8: np.dtype(np.uint8), 16: np.dtype(np.int16), 32: np.dtype(np.int32)}
_ROUTINES = {1: "rdecomp_byte", 2: "rdecomp_short", 4: "rdecomp_int"}
_TFORM = re.compile(r"1?([PQ])B(\(\d+\))?")
# cfitsio's decoder checks for the end of a tile's bytes only after each block: within one
# it reads on (a run of zero bytes as long as it lasts). The heap is therefore decoded from
# a copy followed by this many 0xFF bytes, which end any zero run at once: a block of at
# most 32 pixels then reads at most ~5 bytes a pixel (~170 bytes) past the heap's end before
# the check stops it. Without it a tile ending in zeros read past the file's bytes (SIGSEGV).
GUARD_BYTES = 1024
# keywords that mean quantisation, dithering or blanking that this path does not reproduce
_REFUSED = ("ZQUANTIZ", "ZDITHER0", "ZSCALE", "ZZERO", "ZBLANK", "TSCAL1", "TZERO1", "ZMASKCMP")


@functools.cache
def routines() -> dict[int, ctypes._CFuncPtr] | None:
    """imagecodecs' Rice decoders by bytes per pixel, or None where they cannot be trusted."""
    try:
        import imagecodecs
        from imagecodecs import _rcomp

        library = ctypes.CDLL(_rcomp.__file__)
        found = {}
        for bytepix, name in _ROUTINES.items():
            routine = getattr(library, name)
            routine.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
            routine.restype = ctypes.c_int
            found[bytepix] = routine
        for bytepix, routine in found.items():
            if not _agrees(routine, np.dtype(f"i{bytepix}"), imagecodecs):
                return None
        return found
    except Exception:  # no imagecodecs, no exported routine, another signature: astropy decodes
        return None


def _agrees(routine, dtype: np.dtype, imagecodecs) -> bool:
    """The exported routine decodes a probe tile as rcomp_decode does and flags a spare byte."""
    probe = (np.arange(300) % 97 * 3 - 100).astype(dtype)
    stream = bytes(imagecodecs.rcomp_encode(probe, nblock=32))
    expected = imagecodecs.rcomp_decode(stream, shape=probe.shape, dtype=dtype, nblock=32)
    out = np.zeros_like(probe)
    codes = []
    for tail in (b"", b"\x00"):
        source = stream + tail
        codes.append(routine(source, len(source), out.ctypes.data, out.size, 32))
    same = np.array_equal(out, expected) and np.array_equal(out, probe)
    return same and codes == [RCOMP_OK, RCOMP_WARN_UNUSED]


def _setting(header, name: str, default):
    """A ZNAMEn/ZVALn setting, found as astropy finds it (the first ZNAMEn of that name)."""
    for i in range(1, 1000):
        if f"ZNAME{i}" not in header:
            break
        if str(header[f"ZNAME{i}"]).lower() == name.lower():
            return header.get(f"ZVAL{i}")
    return default


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def plan(compressed, image) -> dict | None:
    """What to decode, from the compressed table's header, or None if astropy must decode it."""
    if compressed.get("ZCMPTYPE") != "RICE_1" or compressed.get("ZNAXIS") != 2:
        return None
    dtype = _DTYPES.get(compressed.get("ZBITPIX"))
    if dtype is None or any(key in compressed for key in _REFUSED):
        return None
    if "BLANK" in image and not _is_int(image["BLANK"]):
        return None
    blocksize = _setting(compressed, "BLOCKSIZE", 32)
    bytepix = _setting(compressed, "BYTEPIX", 4)
    if blocksize not in (16, 32) or not _is_int(bytepix) or bytepix != dtype.itemsize:
        return None
    values = [compressed.get(key) for key in ("ZNAXIS1", "ZNAXIS2", "ZTILE1", "ZTILE2")]
    if not all(_is_int(v) and 0 < v < 2**31 for v in values):
        return None
    width, height, tile_width, tile_height = values
    if tile_width * tile_height >= 2**31:
        return None
    tiles = -(-width // tile_width) * -(-height // tile_height)
    tform = _TFORM.fullmatch(str(compressed.get("TFORM1", "")))
    if compressed.get("TFIELDS") != 1 or compressed.get("TTYPE1") != "COMPRESSED_DATA" or tform is None:
        return None
    row_bytes = 8 if tform.group(1) == "P" else 16
    table = row_bytes * tiles
    theap, pcount = compressed.get("THEAP", table), compressed.get("PCOUNT")
    if compressed.get("NAXIS1") != row_bytes or compressed.get("NAXIS2") != tiles:
        return None
    if not (_is_int(theap) and _is_int(pcount) and table <= theap <= table + pcount):
        return None
    return {
        "dtype": dtype,
        "shape": (height, width),
        "tile": (tile_height, tile_width),
        "blocksize": blocksize,
        "descriptor": ">i4" if row_bytes == 8 else ">i8",
        "theap": theap,
        "heap_bytes": pcount - (theap - table),
    }


def raw_pixels(spec: dict, data: bytes, data_offset: int) -> np.ndarray | None:
    """The unscaled image, tile by tile, or None if any tile is not exactly what astropy reads."""
    decoders = routines()
    if decoders is None:
        return None
    height, width = spec["shape"]
    tile_height, tile_width = spec["tile"]
    dtype, blocksize = spec["dtype"], spec["blocksize"]
    heap = data_offset + spec["theap"]
    if heap + spec["heap_bytes"] > len(data):
        return None
    across = -(-width // tile_width)
    tiles = across * -(-height // tile_height)
    descriptors = np.frombuffer(data, spec["descriptor"], count=2 * tiles, offset=data_offset)
    counts, offsets = descriptors[0::2].astype(np.int64), descriptors[1::2].astype(np.int64)
    # a tile of fewer than 2 bytes makes astropy fall to fallback columns or raise; each
    # bound alone before the sum, which two 64-bit (Q) descriptors could wrap past 2**63
    limit = min(spec["heap_bytes"], 2**31 - 1)  # the routine takes the count as a C int
    if counts.min() < 2 or offsets.min() < 0 or counts.max() > limit or offsets.max() > limit:
        return None
    if (offsets + counts).max() > limit:
        return None
    source = np.empty(spec["heap_bytes"] + GUARD_BYTES, np.uint8)
    source[: spec["heap_bytes"]] = np.frombuffer(data, np.uint8, count=spec["heap_bytes"], offset=heap)
    source[spec["heap_bytes"] :] = 0xFF
    starts = (source.ctypes.data + offsets).tolist()
    counts = counts.tolist()
    routine = decoders[dtype.itemsize]
    out = np.empty((height, width), dtype)
    if tile_width >= width:  # whole-width tiles (AIA's rows): each is a contiguous block of out
        row_bytes = width * dtype.itemsize
        base = out.ctypes.data
        for index in range(tiles):
            top = index * tile_height
            pixels = min(tile_height, height - top) * width
            if routine(starts[index], counts[index], base + top * row_bytes, pixels, blocksize) != RCOMP_OK:
                return None
        return out
    scratch = np.empty(tile_height * tile_width, dtype)
    address = scratch.ctypes.data
    for index in range(tiles):
        top, left = divmod(index, across)
        top, left = top * tile_height, left * tile_width
        rows, columns = min(tile_height, height - top), min(tile_width, width - left)
        if routine(starts[index], counts[index], address, rows * columns, blocksize) != RCOMP_OK:
            return None
        out[top : top + rows, left : left + columns] = scratch[: rows * columns].reshape(rows, columns)
    return out


def decode(hdu, data: bytes) -> np.ndarray | None:
    """``hdu.data`` as astropy gives it (scaled, header updated), or None: let astropy decode.

    ``hdu`` is an HDU of ``fits.open(io.BytesIO(data))``, so its file offsets index ``data``.
    """
    if routines() is None:
        return None
    try:
        from astropy.io import fits

        if not isinstance(hdu, fits.CompImageHDU):
            return None
        spec = plan(hdu._bintable.header, hdu.header)
        if spec is None:
            return None
        raw = raw_pixels(spec, data, hdu.fileinfo()["datLoc"])
        if raw is None:
            return None
        # astropy's CompImageHDU.data does exactly this after decompressing the tiles
        pixels = raw if hdu._do_not_scale_image_data else hdu._scale_data(raw)
        hdu._update_header_scale_info(pixels.dtype)
        return pixels
    except Exception:  # astropy's internals moved, or anything unforeseen: astropy decides
        return None
