"""The local archive: a folder rclone serves as S3 buckets, seeded and verified.

Each local bucket is a folder under ``<state>/archive``. Seeding writes into a scratch
folder and renames it into place only when complete, then records a manifest (every
file's size and SHA-256, and the settings that made it) under ``<state>/seed``. On each
start the bucket is checked against its manifest: a half-seeded bucket (no manifest), a
missing or changed file, or changed seed settings is moved aside to
``<state>/quarantine`` (never deleted: it may hold someone's files) and seeded anew.
A bucket is never served unverified.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from astropy.io import fits

from platform_tools.catalog import (
    BucketCatalog,
    IndexedFile,
    catalog_entry,
    catalog_json,
    index_files,
    index_name,
)
from platform_tools.config.models import LocalArchive
from platform_tools.local.aia_synthetic import SyntheticAIA

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
SYNTHETIC_START = datetime(2024, 5, 8)
SYNTHETIC_WAVELENGTH = 94
SYNTHETIC_ID = "aia_0094_synthetic"

#: Real solar FITS files shipped inside the sunpy wheel: (dataset id, title, key prefix,
#: file names). Found through sunpy.data.test, so no network is needed.
SUNPY_SAMPLES = (
    (
        "sdo_aia_0171_sample",
        "SDO/AIA 171 A level 1 (sunpy test file, 128x128)",
        "sdo/aia/sample/0171",
        ("aia_171_level1.fits",),
    ),
    (
        "soho_eit_0195_sample",
        "SOHO/EIT 195 A (sunpy test files)",
        "soho/eit/sample",
        ("EIT/efz20040301.000010_s.fits", "EIT/efz20040301.010016_s.fits"),
    ),
    (
        "sdo_hmi_sample",
        "SDO/HMI magnetogram, resampled (sunpy test file)",
        "sdo/hmi/sample",
        ("resampled_hmi.fits",),
    ),
)


@dataclass(frozen=True)
class BucketState:
    """What a check of a bucket found: ``ok`` or why it must be seeded again."""

    ok: bool
    reason: str


class ArchiveSeeder:
    """Seeds and verifies one local bucket under the archive root."""

    def __init__(
        self,
        archive_root: Path,
        seed_dir: Path,
        quarantine_dir: Path,
        scratch_dir: Path,
        bucket: str,
        settings: LocalArchive,
    ):
        self.root = archive_root
        self.bucket = bucket
        self.settings = settings
        self.path = archive_root / bucket
        self.manifest_path = seed_dir / f"{bucket}.json"
        self.quarantine_dir = quarantine_dir
        self.scratch_dir = scratch_dir

    # ----------------------------------------------------------------- checking

    def check(self) -> BucketState:
        if not self.path.is_dir():
            return BucketState(False, "not seeded yet")
        if not self.manifest_path.is_file():
            return BucketState(False, "no seed manifest: seeding was interrupted")
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as exc:
            return BucketState(False, f"unreadable seed manifest ({exc})")
        if manifest.get("version") != MANIFEST_VERSION or manifest.get("settings") != self._settings_key():
            return BucketState(False, "seed settings changed")
        for relative, (size, digest) in manifest["files"].items():
            file = self.path / relative
            try:
                actual_size = file.stat().st_size
            except FileNotFoundError:
                return BucketState(False, f"{relative} is missing")
            if actual_size != size:
                return BucketState(False, f"{relative} has {actual_size} bytes, expected {size}")
            if _sha256(file) != digest:
                return BucketState(False, f"{relative} is corrupt (checksum differs)")
        return BucketState(True, f"verified {len(manifest['files'])} files")

    def ensure(self) -> BucketState:
        """Make the bucket servable: verify it, or set the bad one aside and seed anew."""
        state = self.check()
        if state.ok:
            log.info("archive %s: %s", self.bucket, state.reason)
            return state
        if self.path.exists():
            aside = self.quarantine_dir / f"{self.bucket}-{time.strftime('%Y%m%dT%H%M%S')}"
            self.quarantine_dir.mkdir(parents=True, exist_ok=True)
            log.warning("archive %s: %s; moving it to %s and seeding again", self.bucket, state.reason, aside)
            self.path.rename(aside)
        else:
            log.info("archive %s: %s; seeding", self.bucket, state.reason)
        started = time.monotonic()
        self.seed()
        result = self.check()
        if not result.ok:  # pragma: no cover - a disk failing under us
            raise RuntimeError(f"archive {self.bucket}: seeding did not verify: {result.reason}")
        log.info("archive %s: seeded in %.1f s (%s)", self.bucket, time.monotonic() - started, result.reason)
        return result

    # ------------------------------------------------------------------ seeding

    def seed(self) -> None:
        self.manifest_path.unlink(missing_ok=True)
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        scratch = self.scratch_dir / f"seed-{self.bucket}-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        if self.settings.seed == "sample":
            write_sample_archive(scratch, self.bucket, self.settings)
        self.root.mkdir(parents=True, exist_ok=True)
        scratch.rename(self.path)  # atomic: the bucket appears complete or not at all
        files = {
            str(file.relative_to(self.path)): [file.stat().st_size, _sha256(file)]
            for file in sorted(self.path.rglob("*"))
            if file.is_file()
        }
        manifest = {"version": MANIFEST_VERSION, "settings": self._settings_key(), "files": files}
        self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        tmp.replace(self.manifest_path)

    def _settings_key(self) -> dict:
        return self.settings.model_dump(mode="json")


def write_sample_archive(folder: Path, bucket: str, settings: LocalArchive) -> None:
    """The sample heliophysics archive and its CloudCatalog, written into ``folder``."""
    datasets = []
    series = SyntheticAIA(
        size=settings.sample_image_size,
        wavelength=SYNTHETIC_WAVELENGTH,
        start=SYNTHETIC_START,
        cadence=timedelta(minutes=settings.sample_cadence_minutes),
    )
    rows = []
    for index in range(settings.sample_files):
        moment = series.time_of(index)
        key = (
            f"sdo/aia/synthetic/{SYNTHETIC_WAVELENGTH:04d}/{moment:%Y/%m/%d}/"
            f"aia_synthetic_{SYNTHETIC_WAVELENGTH:04d}_{moment:%Y%m%dT%H%M%S}Z.fits"
        )
        data = series.fits_bytes(index)
        _write(folder / key, data)
        rows.append(IndexedFile(moment, moment + timedelta(seconds=2.9), f"s3://{bucket}/{key}", len(data)))
    datasets.append(
        (
            SYNTHETIC_ID,
            f"Synthetic AIA-like 94 A series ({settings.sample_image_size}x{settings.sample_image_size}, "
            f"every {settings.sample_cadence_minutes} min)",
            rows,
            "Made by Parhelion to stand in for SDO/AIA level 1 data: RICE tile-compressed int16, "
            "AIA header keywords, rotating active regions and two flares. Not real data.",
        )
    )
    datasets += _sunpy_datasets(folder, bucket)

    entries = []
    index_prefix = f"s3://{bucket}/index/"
    for dataset_id, title, files, description in datasets:
        for year, text in index_files(files).items():
            _write(folder / "index" / index_name(dataset_id, year), text.encode())
        entries.append(
            catalog_entry(
                dataset_id=dataset_id,
                index=index_prefix,
                title=title,
                files=files,
                description=description,
            )
        )
    catalog = BucketCatalog(
        endpoint=f"s3://{bucket}/",
        name=f"Parhelion sample heliophysics archive ({bucket})",
        contact="the platform's administrators",
        description="Real SDO/AIA, SOHO/EIT and SDO/HMI FITS files from the sunpy package, "
        "and a synthetic AIA-like 94 A series, for trying Parhelion without the internet.",
        catalog=entries,
    )
    _write(folder / "catalog.json", catalog_json(catalog).encode())


def _sunpy_datasets(folder: Path, bucket: str) -> list[tuple[str, str, list[IndexedFile], str]]:
    from sunpy.data.test import get_test_filepath

    datasets = []
    for dataset_id, title, prefix, names in SUNPY_SAMPLES:
        rows = []
        for name in names:
            source = Path(get_test_filepath(name))
            data = source.read_bytes()
            key = f"{prefix}/{source.name}"
            _write(folder / key, data)
            start, stop = _observation_span(source)
            rows.append(IndexedFile(start, stop, f"s3://{bucket}/{key}", len(data)))
        datasets.append((dataset_id, title, rows, "A real observation shipped with sunpy's tests."))
    return datasets


def _observation_span(path: Path) -> tuple[datetime, datetime]:
    """DATE-OBS and DATE-OBS + EXPTIME from the first header that has them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # sunpy's HMI file: BLANK on floats
        with fits.open(path) as hdus:
            headers = [hdu.header for hdu in hdus]
    for header in headers:
        if "DATE-OBS" in header or "DATE_OBS" in header:
            text = str(header.get("DATE-OBS") or header.get("DATE_OBS")).rstrip("Z")
            if "T" not in text and "TIME-OBS" in header:
                text = f"{text}T{header['TIME-OBS']}"
            start = datetime.fromisoformat(text.replace("/", "-"))
            exposure = float(header.get("EXPTIME") or 0.0)
            return start, start + timedelta(seconds=max(exposure, 1.0))
    raise ValueError(f"{path}: no DATE-OBS in any header")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
