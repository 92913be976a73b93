"""AIA-like synthetic images: tile-compressed int16 FITS with realistic AIA headers.

The local archive needs a time series that behaves like SDO/AIA level 1 data without
the internet: the same header keywords sunpy's AIAMap reads (DATE-OBS, WAVELNTH,
EXPTIME, a helioprojective WCS, RSUN_OBS), the same storage (RICE tile compression of
int16), and content with a signal worth analysing: a limb-brightened disk, active
regions that rotate with the Sun, and flares whose light curves an irradiance notebook
can find. Every file says in its header that it is synthetic.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from astropy.io import fits

#: AIA's plate scale at full resolution and the Sun's apparent radius near 1 AU.
AIA_FULL_SIZE = 4096
AIA_ARCSEC_PER_PIXEL = 0.6
RSUN_ARCSEC = 960.0
RSUN_METERS = 696_000_000.0
AU_METERS = 149_597_870_700.0
SIDEREAL_DEG_PER_DAY = 13.2
TILE = 64


@dataclass(frozen=True)
class ActiveRegion:
    longitude_deg: float  # at the series start, seen from Earth (0 = disk centre)
    latitude_deg: float
    width_deg: float
    brightness: float  # DN at the core


@dataclass(frozen=True)
class Flare:
    region: int  # index into the active regions
    peak: datetime
    rise_minutes: float
    decay_minutes: float
    amplitude: float  # DN added at the region's core at peak


class SyntheticAIA:
    """A reproducible AIA-like series: the same seed gives the same images and headers."""

    def __init__(self, size: int, wavelength: int, start: datetime, cadence: timedelta, seed: int = 94):
        if size % TILE:
            raise ValueError(f"image size must be a multiple of {TILE}, got {size}")
        self.size = size
        self.wavelength = wavelength
        self.start = start
        self.cadence = cadence
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.regions = [
            ActiveRegion(
                longitude_deg=float(rng.uniform(-80, 60)),
                latitude_deg=float(rng.choice([-1, 1]) * rng.uniform(8, 30)),
                width_deg=float(rng.uniform(3, 7)),
                brightness=float(rng.uniform(150, 400)),
            )
            for _ in range(5)
        ]
        self.flares = [
            Flare(
                region=1, peak=start + timedelta(hours=20), rise_minutes=12, decay_minutes=60, amplitude=6000
            ),
            Flare(
                region=3, peak=start + timedelta(hours=58), rise_minutes=8, decay_minutes=35, amplitude=2500
            ),
        ]
        self.arcsec_per_pixel = AIA_ARCSEC_PER_PIXEL * AIA_FULL_SIZE / size
        self.radius_px = RSUN_ARCSEC / self.arcsec_per_pixel
        centre = (size - 1) / 2
        axis = (np.arange(size, dtype=np.float32) - centre) / np.float32(self.radius_px)  # solar radii
        self._x = axis  # along a row (columns)
        self._y = axis  # down a column (rows)
        self._r = np.hypot(axis[np.newaxis, :], axis[:, np.newaxis])
        self._quiet = self._quiet_sun()

    def time_of(self, index: int) -> datetime:
        return self.start + index * self.cadence

    def _quiet_sun(self) -> np.ndarray:
        """Disk with EUV limb brightening plus a corona falling off above the limb."""
        r = self._r
        on_disk = r < 1.0
        mu = np.sqrt(np.clip(1.0 - r**2, 0.0, 1.0))
        disk = 40.0 * (1.0 + 0.6 * (1.0 - mu))
        corona = 45.0 * np.exp(-(np.maximum(r, 1.0) - 1.0) / 0.08)
        return np.where(on_disk, disk, corona).astype(np.float32)

    def _region_light(self, moment: datetime) -> np.ndarray:
        days = (moment - self.start).total_seconds() / 86400.0
        light = np.zeros_like(self._quiet)
        for index, region in enumerate(self.regions):
            lon = math.radians(region.longitude_deg + SIDEREAL_DEG_PER_DAY * days)
            lat = math.radians(region.latitude_deg)
            if math.cos(lon) * math.cos(lat) <= 0:  # behind the limb
                continue
            cx = math.sin(lon) * math.cos(lat)
            cy = math.sin(lat)
            width = math.radians(region.width_deg)
            core = region.brightness + self._flare_boost(index, moment)
            # a round Gaussian is separable: an outer product of two 1-D profiles, which
            # keeps 4096x4096 images (the benchmark's) to a fraction of a second each
            across = np.exp(-((self._x - cx) ** 2) / (2 * width**2)).astype(np.float32)
            down = np.exp(-((self._y - cy) ** 2) / (2 * width**2)).astype(np.float32)
            light += np.float32(core) * np.outer(down, across)
        return light

    def _flare_boost(self, region: int, moment: datetime) -> float:
        boost = 0.0
        for flare in self.flares:
            if flare.region != region:
                continue
            minutes = (moment - flare.peak).total_seconds() / 60.0
            if minutes < 0:
                boost += flare.amplitude * math.exp(-(minutes**2) / (2 * flare.rise_minutes**2))
            else:
                boost += flare.amplitude * math.exp(-minutes / flare.decay_minutes)
        return boost

    def image(self, index: int) -> np.ndarray:
        """The int16 image at ``index``: photon (Poisson) noise on the model."""
        moment = self.time_of(index)
        model = self._quiet + self._region_light(moment)
        rng = np.random.default_rng((self.seed, index))
        counts = rng.poisson(np.clip(model, 0, None)).astype(np.float32)
        return np.clip(counts, 0, np.iinfo(np.int16).max).astype(np.int16)

    def header(self, index: int) -> fits.Header:
        moment = self.time_of(index)
        exposure = 2.9
        distance = AU_METERS * (
            1.0 - 0.0167 * math.cos(2 * math.pi * (moment.timetuple().tm_yday - 4) / 365.25)
        )
        b0 = 7.25 * math.sin(2 * math.pi * (moment.timetuple().tm_yday - 158) / 365.25)
        centre = (self.size + 1) / 2
        cards = [
            ("TELESCOP", "SDO/AIA", "synthetic: made by Parhelion, not real data"),
            ("INSTRUME", "AIA_4"),
            ("DETECTOR", "AIA"),
            ("OBSRVTRY", "SDO"),
            ("ORIGIN", "Parhelion synthetic AIA-like series"),
            ("DATE-OBS", moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], "start of exposure (UTC)"),
            ("T_OBS", (moment + timedelta(seconds=exposure / 2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"),
            ("EXPTIME", exposure, "[s] exposure duration"),
            ("WAVELNTH", self.wavelength, "[angstrom] wavelength"),
            ("WAVEUNIT", "angstrom"),
            ("WAVE_STR", f"{self.wavelength}_THIN"),
            ("LVL_NUM", 1.0, "processing level"),
            ("QUALITY", 0),
            ("BUNIT", "DN"),
            ("CTYPE1", "HPLN-TAN"),
            ("CTYPE2", "HPLT-TAN"),
            ("CUNIT1", "arcsec"),
            ("CUNIT2", "arcsec"),
            ("CDELT1", self.arcsec_per_pixel),
            ("CDELT2", self.arcsec_per_pixel),
            ("CRPIX1", centre),
            ("CRPIX2", centre),
            ("CRVAL1", 0.0),
            ("CRVAL2", 0.0),
            ("CROTA2", 0.0),
            ("RSUN_OBS", math.degrees(math.atan(RSUN_METERS / distance)) * 3600, "[arcsec]"),
            ("RSUN_REF", RSUN_METERS, "[m]"),
            ("DSUN_OBS", distance, "[m]"),
            ("HGLN_OBS", 0.0, "[deg]"),
            ("HGLT_OBS", b0, "[deg]"),
            ("R_SUN", self.radius_px, "[pixel]"),
            ("IMG_TYPE", "LIGHT"),
        ]
        header = fits.Header(cards)
        header.add_comment("Synthetic AIA-like image for testing Parhelion; not SDO data.")
        return header

    def fits_bytes(self, index: int) -> bytes:
        """One file: an empty primary HDU and a RICE tile-compressed image, as AIA ships.

        With FITS checksums, as AIA's files have; their comments carry the time of
        writing, so two runs give the same data and header values, not the same bytes.
        """
        hdu = fits.CompImageHDU(
            self.image(index),
            header=self.header(index),
            compression_type="RICE_1",
            tile_shape=(TILE, TILE),
        )
        out = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out, checksum=True)
        return out.getvalue()
