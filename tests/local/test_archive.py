"""The sample archive: seeded completely, verified on every start, re-seeded when bad."""

from __future__ import annotations

import io
import json

import pytest
from astropy.io import fits

from platform_tools.catalog import CloudCatalog
from platform_tools.config.models import LocalArchive
from platform_tools.local.archive import SYNTHETIC_ID, ArchiveSeeder

pytestmark = pytest.mark.unit

SMALL = LocalArchive(sample_files=6, sample_image_size=128, sample_cadence_minutes=30)


def seeder(tmp_path, settings=SMALL) -> ArchiveSeeder:
    return ArchiveSeeder(
        tmp_path / "archive",
        tmp_path / "seed",
        tmp_path / "quarantine",
        tmp_path / "tmp",
        "helio-sample",
        settings,
    )


@pytest.mark.integration  # the catalog is read back through a real S3 server
def test_seed_writes_files_catalog_and_manifest(tmp_path, s3_server):
    archive = ArchiveSeeder(
        s3_server.root, tmp_path / "seed", tmp_path / "quarantine", tmp_path / "tmp", "helio-sample", SMALL
    )
    assert archive.check().reason == "not seeded yet"
    state = archive.ensure()
    assert state.ok
    bucket = s3_server.root / "helio-sample"
    fits_files = sorted(bucket.rglob("*.fits"))
    assert len(fits_files) == 6 + 4  # the series and sunpy's real files
    manifest = json.loads((tmp_path / "seed" / "helio-sample.json").read_text())
    assert len(manifest["files"]) == len([p for p in bucket.rglob("*") if p.is_file()])
    assert not list((tmp_path / "tmp").iterdir()), "scratch left behind"

    catalog = CloudCatalog("s3://helio-sample", **s3_server.storage_options)
    assert set(catalog.datasets().id) == {
        SYNTHETIC_ID,
        "sdo_aia_0171_sample",
        "soho_eit_0195_sample",
        "sdo_hmi_sample",
    }
    rows = catalog.query(SYNTHETIC_ID)
    assert len(rows) == 6
    assert rows.datakey.iloc[0] == (
        "s3://helio-sample/sdo/aia/synthetic/0094/2024/05/08/aia_synthetic_0094_20240508T000000Z.fits"
    )
    first = bucket / rows.datakey.iloc[0].removeprefix("s3://helio-sample/")
    assert rows.filesize.iloc[0] == first.stat().st_size
    eit = catalog.query("soho_eit_0195_sample")
    assert list(eit.start.dt.strftime("%H:%M:%S")) == ["00:00:10", "01:00:16"]


def test_verified_bucket_is_left_alone(tmp_path):
    archive = seeder(tmp_path)
    archive.ensure()
    marker = tmp_path / "archive" / "helio-sample" / "catalog.json"
    before = marker.stat().st_mtime_ns
    assert archive.ensure().reason == "verified 15 files"
    assert marker.stat().st_mtime_ns == before


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_corrupt_bucket_is_set_aside_and_reseeded(tmp_path, damage):
    archive = seeder(tmp_path)
    archive.ensure()
    victim = next((tmp_path / "archive" / "helio-sample").rglob("aia_synthetic_*.fits"))
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        victim.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    else:
        victim.unlink()
    state = archive.check()
    assert not state.ok and victim.name in state.reason
    assert archive.ensure().ok
    assert victim.is_file() and archive.check().ok
    assert len(victim.read_bytes()) == len(data)
    (aside,) = (tmp_path / "quarantine").iterdir()  # the damaged copy is kept, not deleted
    assert aside.name.startswith("helio-sample-")


def test_interrupted_seed_is_detected(tmp_path):
    archive = seeder(tmp_path)
    archive.ensure()
    (tmp_path / "seed" / "helio-sample.json").unlink()  # as if killed before the manifest
    assert archive.check().reason == "no seed manifest: seeding was interrupted"
    assert archive.ensure().ok


def test_changed_settings_reseed(tmp_path):
    seeder(tmp_path).ensure()
    bigger = seeder(tmp_path, LocalArchive(sample_files=8, sample_image_size=128, sample_cadence_minutes=30))
    assert bigger.check().reason == "seed settings changed"
    bigger.ensure()
    assert len(list((tmp_path / "archive" / "helio-sample").rglob("aia_synthetic_*.fits"))) == 8


def test_empty_seed(tmp_path):
    archive = seeder(tmp_path, LocalArchive(seed="empty"))
    assert archive.ensure().reason == "verified 0 files"
    assert (tmp_path / "archive" / "helio-sample").is_dir()


def test_synthetic_files_look_like_aia(tmp_path):
    import sunpy.map

    seeder(tmp_path).ensure()
    path = sorted((tmp_path / "archive" / "helio-sample").rglob("aia_synthetic_*.fits"))[1]
    with fits.open(io.BytesIO(path.read_bytes())) as hdul:
        assert isinstance(hdul[1], fits.CompImageHDU)
        assert hdul[1].compression_type == "RICE_1"
        assert hdul[1].tile_shape == (64, 64)
        assert hdul[1].data.dtype.name == "int16"
        header, data = hdul[1].header, hdul[1].data
    assert header["DATE-OBS"] == "2024-05-08T00:30:00.000"
    assert header["WAVELNTH"] == 94 and header["EXPTIME"] == 2.9
    aia = sunpy.map.Map(data, header)
    assert type(aia).__name__ == "AIAMap"
    assert aia.wavelength.value == 94
    assert 900 < aia.rsun_obs.value < 1000
    assert data.max() > 3 * data.mean() > 0  # a disk, not noise
