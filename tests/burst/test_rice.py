"""The RICE fast path gives astropy's answer exactly, or hands the file to astropy.

Every case compares ``decode_image(data)`` with ``decode_image(data, fast=False)`` (astropy
alone): pixel values, dtype and the header's text must be identical; and says whether the
fast path was taken (``rice.decode`` answers) or refused (None: astropy decoded it).
"""

from __future__ import annotations

import io
import sys
from datetime import datetime, timedelta

import numpy as np
import pytest
from astropy.io import fits

from platform_tools.burst import rice
from platform_tools.burst.worker import DecodeError, decode_image
from platform_tools.local.aia_synthetic import SyntheticAIA

pytestmark = pytest.mark.unit

pytest.importorskip("imagecodecs")
RNG = np.random.default_rng(19)


def fits_bytes(hdu) -> bytes:
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out)
    return out.getvalue()


def fast_path_taken(data: bytes) -> bool:
    with fits.open(io.BytesIO(data), memmap=False) as hdul:
        return rice.decode(hdul[1], data) is not None


def assert_same_as_astropy(data: bytes) -> np.ndarray:
    expected, expected_header = decode_image(data, fast=False)
    pixels, header = decode_image(data)
    assert pixels.dtype == expected.dtype
    assert pixels.shape == expected.shape
    assert np.array_equal(pixels, expected, equal_nan=pixels.dtype.kind == "f")
    assert header.tostring() == expected_header.tostring()
    return pixels


def rice_file(image: np.ndarray, tile_shape, header=None) -> bytes:
    hdu = fits.CompImageHDU(image, header=header, compression_type="RICE_1", tile_shape=tile_shape)
    return fits_bytes(hdu)


@pytest.mark.parametrize("dtype", ["int16", "int32", "uint8"])
@pytest.mark.parametrize(
    "tile_shape",
    [(1, 70), (16, 32), (7, 70), (64, 64)],
    ids=["row-tiles", "2d-partial-edges", "whole-width-partial-last", "one-tile-larger-than-image"],
)
def test_integer_rice_images_decode_to_astropys_pixels_and_header(dtype, tile_shape):
    info = np.iinfo(dtype)
    image = RNG.integers(max(info.min, -50_000), min(info.max, 50_000), (50, 70), endpoint=True).astype(dtype)
    image[10:20, 5:40] = image[10, 5]  # a flat patch: Rice's all-zero-difference blocks
    data = rice_file(image, tile_shape)
    assert fast_path_taken(data)
    pixels = assert_same_as_astropy(data)
    assert np.array_equal(pixels, image)


def test_bscale_bzero_give_astropys_float_pixels_and_header():
    hdu = fits.CompImageHDU(RNG.normal(100, 10, (40, 60)).astype(np.float32), compression_type="RICE_1")
    hdu.scale("int16", bscale=0.5, bzero=100)
    data = fits_bytes(hdu)
    assert fast_path_taken(data)
    pixels = assert_same_as_astropy(data)
    assert pixels.dtype == np.float32  # scaled to float, and BSCALE/BZERO gone from the header
    assert "BSCALE" not in decode_image(data)[1]


def test_unsigned_16_bit_images_stay_unsigned_as_in_astropy():
    image = RNG.integers(0, 65535, (40, 60), endpoint=True).astype(np.uint16)
    data = rice_file(image, (1, 60))
    assert fast_path_taken(data)
    assert assert_same_as_astropy(data).dtype == np.uint16


def test_blank_pixels_become_nan_as_in_astropy():
    image = RNG.integers(0, 3000, (40, 60)).astype(np.int16)
    image[3, 4] = image[30, 59] = -32768
    data = rice_file(image, (1, 60), header=fits.Header([("BLANK", -32768)]))
    assert fast_path_taken(data)
    pixels = assert_same_as_astropy(data)
    assert np.isnan(pixels[3, 4]) and np.isnan(pixels[30, 59]) and np.isfinite(pixels).sum() == 40 * 60 - 2


def test_aia_like_files_take_the_fast_path():
    series = SyntheticAIA(size=256, wavelength=94, start=datetime(2024, 5, 8), cadence=timedelta(minutes=12))
    data = series.fits_bytes(0)
    assert fast_path_taken(data)
    assert np.array_equal(assert_same_as_astropy(data), series.image(0))


def test_aia_level_1_rows_take_the_fast_path():
    """int16, one tile per 4096-pixel row, BLANK: AIA level 1's own layout (256 of its rows)."""
    image = RNG.integers(0, 16_000, (256, 4096), dtype=np.int16)
    image[0, :7] = -32768
    data = rice_file(image, (1, 4096), header=fits.Header([("BLANK", -32768), ("EXPTIME", 2.9)]))
    assert fast_path_taken(data)
    assert np.isnan(assert_same_as_astropy(data)[0, :7]).all()


@pytest.mark.parametrize(
    "hdu",
    [
        fits.CompImageHDU(RNG.normal(100, 10, (40, 60)).astype(np.float32), compression_type="RICE_1"),
        fits.CompImageHDU(RNG.integers(0, 3000, (40, 60)).astype(np.int16), compression_type="GZIP_1"),
        fits.CompImageHDU(RNG.integers(0, 3000, (40, 60)).astype(np.int16), compression_type="HCOMPRESS_1"),
        fits.ImageHDU(RNG.integers(0, 3000, (40, 60)).astype(np.int16)),
    ],
    ids=["float-quantized-rice", "gzip", "hcompress", "uncompressed"],
)
def test_other_images_are_left_to_astropy(hdu):
    data = fits_bytes(hdu)
    assert not fast_path_taken(data)
    assert_same_as_astropy(data)


def test_bytepix_other_than_the_pixel_size_is_left_to_astropy():
    data = bytearray(rice_file(RNG.integers(0, 3000, (40, 60)).astype(np.int16), (1, 60)))
    card = data.find(b"ZVAL2   =                    2")
    assert card > 0
    data[card : card + 30] = b"ZVAL2   =                    4"  # BYTEPIX 4 for int16 pixels
    assert not fast_path_taken(bytes(data))


def corrupt(tile: int, extra: int) -> bytes:
    """A RICE file whose ``tile``-th heap descriptor claims ``extra`` bytes more (or fewer)."""
    data = bytearray(rice_file(RNG.integers(0, 3000, (40, 60)).astype(np.int16), (1, 60)))
    with fits.open(io.BytesIO(bytes(data)), memmap=False) as hdul:
        table = hdul[1].fileinfo()["datLoc"]
    at = table + 8 * tile
    count = int.from_bytes(data[at : at + 4], "big")
    data[at : at + 4] = (count + extra).to_bytes(4, "big")
    return bytes(data)


def test_a_tile_cut_short_is_a_decode_error():
    with pytest.raises(DecodeError, match="not a readable FITS file: .*end of compressed byte stream"):
        decode_image(corrupt(tile=5, extra=-4))


def test_a_tile_that_ends_before_its_bytes_do_is_a_decode_error_as_in_astropy():
    """imagecodecs' rcomp_decode accepts this tile; astropy calls it corrupt, and so do we."""
    import imagecodecs

    data = corrupt(tile=0, extra=3)  # the next tile's first bytes, never read
    with fits.open(io.BytesIO(data), disable_image_compression=True, memmap=False) as hdul:
        table, rows = hdul[1].fileinfo()["datLoc"], hdul[1].header["NAXIS2"]
    start, count = table + 8 * rows, int.from_bytes(data[table : table + 4], "big")
    assert imagecodecs.rcomp_decode(data[start : start + count], shape=(60,), dtype=np.int16).shape == (60,)
    with pytest.raises(DecodeError, match="unused bytes at end of compressed buffer"):
        decode_image(data)
    with pytest.raises(DecodeError, match="unused bytes"):
        decode_image(data, fast=False)


def test_without_imagecodecs_astropy_decodes_silently(monkeypatch):
    data = rice_file(RNG.integers(0, 3000, (40, 60)).astype(np.int16), (1, 60))
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # import imagecodecs -> ImportError
    rice.routines.cache_clear()
    try:
        assert rice.routines() is None
        assert not fast_path_taken(data)
        assert_same_as_astropy(data)
    finally:
        monkeypatch.undo()
        rice.routines.cache_clear()
    assert fast_path_taken(data)


def outcome(data: bytes, fast: bool):
    try:
        pixels, header = decode_image(data, fast=fast)
    except DecodeError as exc:
        return str(exc)
    return pixels.dtype.str, pixels.tobytes(), header.tostring()


@pytest.mark.parametrize("tile_shape", [(1, 60), (16, 32)], ids=["row-tiles", "2d-tiles"])
def test_corrupt_heaps_and_descriptors_give_astropys_answer_or_its_error(tile_shape):
    """Flipped heap bits, counts and offsets off by a few bytes: the same pixels or the same error."""
    rng = np.random.default_rng(6)
    data = rice_file(rng.poisson(200, (40, 60)).astype(np.int16), tile_shape)
    with fits.open(io.BytesIO(data), disable_image_compression=True, memmap=False) as hdul:
        table, tiles, heap_bytes = (
            hdul[1].fileinfo()["datLoc"],
            hdul[1].header["NAXIS2"],
            hdul[1].header["PCOUNT"],
        )
    errors = 0
    for case in range(36):
        broken = bytearray(data)
        if case % 3 == 0:
            at = table + 8 * tiles + int(rng.integers(0, heap_bytes))
            broken[at] ^= 1 << int(rng.integers(0, 8))
        else:  # a descriptor's count (case % 3 == 1) or offset, a few bytes off
            at = table + 8 * int(rng.integers(0, tiles)) + 4 * (case % 3 - 1)
            value = int.from_bytes(broken[at : at + 4], "big") + int(rng.choice([-3, -1, 1, 2, 5]))
            broken[at : at + 4] = max(value, 0).to_bytes(4, "big")
        expected = outcome(bytes(broken), fast=False)
        assert outcome(bytes(broken), fast=True) == expected
        errors += isinstance(expected, str)
    assert 3 < errors < 33  # both kinds of answer were exercised


def _q_descriptors(data: bytes, count: int | None = None, offset: int | None = None) -> bytes:
    """The same RICE file with 64-bit (1QB) descriptors; the first tile's may be replaced."""
    with fits.open(io.BytesIO(data), disable_image_compression=True, memmap=False) as hdul:
        header, start, at = hdul[1].header.copy(), hdul[1].fileinfo()["datLoc"], hdul[1].fileinfo()["hdrLoc"]
    rows, pcount = header["NAXIS2"], header["PCOUNT"]
    descriptors = np.frombuffer(data, ">i4", count=2 * rows, offset=start).astype(">i8")
    if count is not None:
        descriptors[0], descriptors[1] = count, offset
    header["NAXIS1"], header["TFORM1"] = 16, header["TFORM1"].replace("P", "Q")
    body = descriptors.tobytes() + data[start + 8 * rows : start + 8 * rows + pcount]
    return data[:at] + header.tostring().encode() + body + b"\0" * (-len(body) % 2880)


def _outcome_in_a_subprocess(data: bytes, fast: bool) -> str:
    """decode_image's error text or "ok", from a separate process: a crash fails this test only."""
    import subprocess

    code = (
        "import sys; from platform_tools.burst.worker import decode_image, DecodeError\n"
        "try: decode_image(sys.stdin.buffer.read(), fast=" + repr(fast) + "); print('ok')\n"
        "except DecodeError as exc: print(exc)"
    )
    done = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=60)
    assert done.returncode == 0, f"the decoder crashed (exit {done.returncode}): {done.stderr[-500:]!r}"
    return done.stdout.decode().strip()


def test_64_bit_descriptors_whose_count_and_offset_wrap_are_refused_not_followed():
    data = rice_file(RNG.integers(0, 3000, (40, 60)).astype(np.int16), (1, 60))
    assert fast_path_taken(_q_descriptors(data))  # plain 1QB files do take the fast path
    evil = _q_descriptors(data, count=2**62 + 100, offset=2**62)  # count + offset wraps below 0
    assert _outcome_in_a_subprocess(evil, fast=True) == _outcome_in_a_subprocess(evil, fast=False)


def test_a_last_tile_running_into_zeros_never_reads_past_the_file():
    """cfitsio reads a block to its end before checking the tile's length; zeros keep it going."""
    data = bytearray(rice_file(RNG.integers(0, 16_000, (512, 4096), dtype=np.int16), (1, 4096)))
    with fits.open(io.BytesIO(bytes(data)), disable_image_compression=True, memmap=False) as hdul:
        start, rows = hdul[1].fileinfo()["datLoc"], hdul[1].header["NAXIS2"]
    count, offset = (
        int(v) for v in np.frombuffer(bytes(data), ">i4", count=2, offset=start + 8 * (rows - 1))
    )
    tile = start + 8 * rows + offset
    data[tile + 3 : tile + count] = bytes(count - 3)
    expected = _outcome_in_a_subprocess(bytes(data), fast=False)
    assert "end of compressed byte stream" in expected
    assert _outcome_in_a_subprocess(bytes(data), fast=True) == expected
