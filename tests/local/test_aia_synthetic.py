"""The synthetic AIA-like series: reproducible, with flares a light curve can find."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from platform_tools.local.aia_synthetic import SyntheticAIA

pytestmark = pytest.mark.unit


def series(size=128) -> SyntheticAIA:
    return SyntheticAIA(size=size, wavelength=94, start=datetime(2024, 5, 8), cadence=timedelta(minutes=20))


def test_same_seed_same_bytes():
    assert series().fits_bytes(3) == series().fits_bytes(3)
    assert series().fits_bytes(3) != series().fits_bytes(4)


def test_flare_peaks_in_the_light_curve():
    s = series()
    curve = np.array([s.image(i).mean() for i in range(0, 72)])  # one day
    peak = int(curve.argmax())
    assert s.time_of(peak) == datetime(2024, 5, 8, 20, 0)
    assert curve.max() > 2 * np.median(curve)


def test_size_must_fit_tiles():
    with pytest.raises(ValueError, match="multiple of 64"):
        SyntheticAIA(size=100, wavelength=94, start=datetime(2024, 1, 1), cadence=timedelta(minutes=1))
