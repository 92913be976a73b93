"""FITS cutouts straight from S3, fetching only the bytes the cutout needs.

A 64x64 cutout of a 4096x4096 tile-compressed AIA image needs the headers and the few
compressed tiles it overlaps, not the 14 MB file. The file is opened through fsspec with
small blocks (s3fs's default block is 50 MB, which would pull nearly every file whole),
astropy reads the headers lazily, and ``.section`` decompresses only the tiles asked
for. ``read_cutout`` reports how many bytes it fetched.

    from platform_tools.burst import burst_map
    from platform_tools.burst.cutout import Cutout

    run = burst_map(Cutout[2000:2064, 2000:2064], files, reader="lazy")
    cube = run.to_xarray(column="cutout")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits

from platform_tools.burst.worker import DecodeError

DEFAULT_BLOCK = 256 * 1024


def read_cutout(
    fs: Any, url: str, section: tuple, hdu: int | None = None, block_size: int = DEFAULT_BLOCK
) -> tuple[np.ndarray, fits.Header, int]:
    """(pixels of ``section``, the image header, bytes fetched) of one FITS file."""
    with fs.open(url, "rb", block_size=block_size, cache_type="bytes") as handle:
        try:
            with fits.open(handle, lazy_load_hdus=True, memmap=False) as hdul:
                image = hdul[hdu] if hdu is not None else _first_image(hdul)
                data = np.array(image.section[section])
                header = image.header.copy()
                fetched = handle.cache.total_requested_bytes  # before astropy closes the handle
        except (OSError, ValueError, IndexError, TypeError) as exc:
            raise DecodeError(f"could not cut {section} out of this FITS file: {exc}") from None
    return data, header, fetched


def _first_image(hdul: fits.HDUList):
    for hdu in hdul:  # lazily: each header is read only when reached
        if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2:
            return hdu
    raise DecodeError("no image in this FITS file")


class _CutoutMaker(type):
    def __getitem__(cls, section) -> Cutout:
        return cls(section if isinstance(section, tuple) else (section,))


@dataclass(frozen=True)
class Cutout(metaclass=_CutoutMaker):
    """A picklable per-file function for ``burst_map(..., reader="lazy")``.

    ``Cutout[y0:y1, x0:x1]`` cuts that section from each file's first image.
    """

    section: tuple
    hdu: int | None = None
    block_size: int = DEFAULT_BLOCK
    keywords: tuple[str, ...] = ("DATE-OBS", "EXPTIME")

    def __call__(self, fs: Any, url: str) -> dict:
        data, header, fetched = read_cutout(fs, url, self.section, self.hdu, self.block_size)
        values = {k.lower().replace("-", "_"): header.get(k) for k in self.keywords}
        return {"cutout": data, "bytes_read": fetched, **values}
