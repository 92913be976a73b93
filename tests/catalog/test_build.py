"""`parhelion catalog build` and `validate`, run as commands against a real S3 server."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import pytest
from astropy.io import fits

from platform_tools.catalog import CloudCatalog
from platform_tools.catalog.builder import time_from_name
from platform_tools.local.aia_synthetic import SyntheticAIA
from tests.platform import run_parhelion

pytestmark = pytest.mark.integration

START = datetime(2024, 12, 31, 23, 0)
SERIES = SyntheticAIA(size=512, wavelength=94, start=START, cadence=timedelta(minutes=20))


def _seed(folder, count: int, named: bool = True) -> int:
    """AIA-like tile-compressed files over day folders; their total size."""
    total = 0
    for i in range(count):
        moment = SERIES.time_of(i)
        name = f"aia_0094_{moment:%Y%m%dT%H%M%S}Z.fits" if named else f"image_{i:05d}.fits"
        path = folder / "aia" / f"{moment:%Y/%m/%d}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = SERIES.fits_bytes(i)
        path.write_bytes(data)
        total += len(data)
    return total


def _parhelion(s3_server, *args: str):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=s3_server.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=s3_server.SECRET_KEY)
    return run_parhelion("catalog", *args, "--endpoint-url", s3_server.url, env=env)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("s3://b/aia/aia_0094_20240508T062000Z.fits", datetime(2024, 5, 8, 6, 20)),
        ("s3://b/aia.lev1_euv_12s.2010-05-13T000002Z.94.image_lev1.fits", datetime(2010, 5, 13, 0, 0, 2)),
        ("s3://b/hmi/hmi_20110607_120000.fits", datetime(2011, 6, 7, 12)),
        ("s3://b/2011/06/07/frame_20110607T120000_123.fits", datetime(2011, 6, 7, 12, 0, 0, 123000)),
        ("s3://b/eit/efz20040301.000010_s.fits", None),  # a date and a number: no full time
    ],
)
def test_times_in_names(key, expected):
    assert time_from_name(key) == expected


def test_build_from_names_then_query_and_validate(bucket, s3_server):
    name, folder = bucket
    _seed(folder, 9)  # across New Year: two index files
    done = _parhelion(
        s3_server, "build", f"s3://{name}/aia", "--id", "aia_94", "--duration", "2.9", "--title", "AIA 94"
    )
    assert done.returncode == 0, done.stderr
    assert "aia_94: 9 files, 2024-12-31T23:00:00Z to 2025-01-01T01:40:02Z" in done.stdout
    assert sorted(p.name for p in (folder / "index").iterdir()) == ["aia_94_2024.csv", "aia_94_2025.csv"]
    frame = CloudCatalog(f"s3://{name}", **s3_server.storage_options).query("aia_94", "2025-01-01T00:30Z")
    assert len(frame) == 4 and frame["datakey"].iloc[0].endswith("aia_0094_20250101T004000Z.fits")
    valid = _parhelion(s3_server, "validate", f"s3://{name}")
    assert valid.returncode == 0, valid.stderr
    assert valid.stdout.strip() == f"s3://{name}: valid"
    listed = _parhelion(s3_server, "query", f"s3://{name}", "aia_94", "--start", "2025-01-01T01:00Z", "--csv")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 1 + 3


def test_build_from_headers_reads_only_the_headers(bucket, s3_server):
    name, folder = bucket
    total = _seed(folder, 12, named=False)
    done = _parhelion(
        s3_server,
        "build",
        f"s3://{name}/aia",
        "--id",
        "aia_94",
        "--times",
        "header",
        "--indextype",
        "parquet",
    )
    assert done.returncode == 0, done.stderr
    read = int(done.stdout.split("headers: ")[1].split(" bytes")[0])
    assert read <= 12 * 3 * 2880  # three header blocks per file ...
    assert read < total / 10  # ... never the images
    frame = CloudCatalog(f"s3://{name}", **s3_server.storage_options).query("aia_94")
    with fits.open(folder / "aia" / "2024/12/31" / "image_00001.fits") as hdul:
        observed = datetime.fromisoformat(hdul[1].header["DATE-OBS"])
        exposure = hdul[1].header["EXPTIME"]
    row = frame[frame["datakey"].str.endswith("image_00001.fits")].iloc[0]
    assert row["start"].to_pydatetime().replace(tzinfo=None) == observed.replace(microsecond=0)
    assert (row["stop"] - row["start"]).total_seconds() == pytest.approx(exposure, abs=1)
    assert (folder / "index" / "aia_94_2025.parquet").exists()


def test_files_with_no_time_are_listed_and_nothing_is_written(bucket, s3_server):
    name, folder = bucket
    _seed(folder, 3)
    (folder / "aia" / "2024" / "README.fits").write_bytes(b"not a dated file")
    done = _parhelion(s3_server, "build", f"s3://{name}/aia", "--id", "aia_94")
    assert done.returncode == 1
    assert (
        "catalog build failed, nothing written: 1 of 4 files have no time in their name matching"
        in done.stderr
    )
    assert f"s3://{name}/aia/2024/README.fits" in done.stderr
    assert not (folder / "catalog.json").exists() and not (folder / "index").exists()
    bad = _parhelion(s3_server, "build", f"s3://{name}/aia", "--id", "x", "--name-pattern", "(?P<Y>\\d{4})")
    assert bad.returncode == 2 and "missing d, m" in bad.stderr
    empty = _parhelion(s3_server, "build", f"s3://{name}/nothing-here", "--id", "x")
    assert empty.returncode == 1 and f"s3://{name}/nothing-here/: nothing there" in empty.stderr


def test_validate_lists_every_problem(bucket, s3_server):
    name, folder = bucket
    _seed(folder, 9)
    assert _parhelion(s3_server, "build", f"s3://{name}/aia", "--id", "aia_94").returncode == 0
    index = folder / "index" / "aia_94_2025.csv"
    lines = index.read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]  # out of order
    lines[3] = lines[3].replace("2025-01-01T00:40:00Z,", "2025-01-01 00:40,", 1)  # not the spec's format
    lines[4] = lines[4].replace("s3://", "", 1)  # not a URL
    index.write_text("\n".join(lines) + "\n")
    (folder / "index" / "aia_94_2023.parquet").write_bytes(b"PAR1")  # wrong type for the entry
    done = _parhelion(s3_server, "validate", f"s3://{name}")
    assert done.returncode == 1
    problems = done.stderr.splitlines()
    key = f"s3://{name}/index/aia_94_2025.csv"
    assert (
        f"{key}: row 2: rows are not in time order (start 2025-01-01T00:00:00Z is before the row above)"
        in problems
    )
    assert f"{key}: row 3: start 2025-01-01 00:40 is not restricted ISO 8601 UTC" in problems
    assert any(p.startswith(f"{key}: row 4: datakey {name}/aia/") for p in problems)
    assert (
        f"s3://{name}/index/aia_94_2023.parquet: a parquet index, but the entry says indextype csv"
        in problems
    )
    assert problems[-1] == f"s3://{name}: {len(problems) - 1} problem(s)", done.stderr
