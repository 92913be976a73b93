"""The synthetic AIA-like series: reproducible, with flares a light curve can find."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from platform_tools.local.aia_synthetic import SyntheticAIA

pytestmark = pytest.mark.unit


def series(size=128) -> SyntheticAIA:
    return SyntheticAIA(size=size, wavelength=94, start=datetime(2024, 5, 8), cadence=timedelta(minutes=20))


def decoded(data: bytes):
    import io

    from astropy.io import fits

    with fits.open(io.BytesIO(data)) as hdul:
        header = {k: v for k, v in hdul[1].header.items() if k not in ("CHECKSUM", "DATASUM")}
        return header, hdul[1].data.copy()


def test_same_seed_same_images_and_headers():
    (h1, d1), (h2, d2) = decoded(series().fits_bytes(3)), decoded(series().fits_bytes(3))
    assert h1 == h2 and np.array_equal(d1, d2)
    _, other = decoded(series().fits_bytes(4))
    assert not np.array_equal(d1, other)


def test_fits_checksums_verify():
    """The stored HDUs carry CHECKSUM/DATASUM that verify (a corrupt byte would warn)."""
    import io
    import warnings

    from astropy.io import fits

    data = series().fits_bytes(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(io.BytesIO(data), checksum=True, disable_image_compression=True) as raw:
            assert all("CHECKSUM" in unit.header and "DATASUM" in unit.header for unit in raw)
            raw[1].data  # noqa: B018 - reading the table verifies DATASUM
    damaged = bytearray(data)
    damaged[-100] ^= 0xFF
    with (
        pytest.warns(Warning, match="(?i)checksum|datasum"),
        fits.open(io.BytesIO(bytes(damaged)), checksum=True, disable_image_compression=True) as raw,
    ):
        raw[1].data  # noqa: B018


def test_flare_peaks_in_the_light_curve():
    s = series()
    curve = np.array([s.image(i).mean() for i in range(0, 72)])  # one day
    peak = int(curve.argmax())
    assert s.time_of(peak) == datetime(2024, 5, 8, 20, 0)
    assert curve.max() > 2 * np.median(curve)


def test_size_must_fit_tiles():
    with pytest.raises(ValueError, match="multiple of 64"):
        SyntheticAIA(size=100, wavelength=94, start=datetime(2024, 1, 1), cadence=timedelta(minutes=1))
