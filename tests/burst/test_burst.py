"""burst_map over a real S3 server on a real (local) Dask cluster: equal to a serial loop,
every failure reported per file, cutouts that fetch only what they need."""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import s3fs
from astropy.io import fits

from platform_tools.burst import Cutout, burst_map, read_cutout
from platform_tools.burst.plan import plan_batches
from platform_tools.local.aia_synthetic import SyntheticAIA
from tests.burst.conftest import COUNT, SERIES

pytestmark = pytest.mark.integration


def mean_rate(image, header):
    return {"rate": float(image.mean()) / header["EXPTIME"], "date_obs": header["DATE-OBS"]}


def serial_loop(files, storage_options):
    fs = s3fs.S3FileSystem(**storage_options)
    rates = {}
    for url in files["datakey"]:
        with fits.open(io.BytesIO(fs.cat_file(url))) as hdul:
            rates[url] = float(hdul[1].data.mean()) / hdul[1].header["EXPTIME"]
    return rates


@pytest.mark.unit
def test_batches_follow_bytes_and_threads():
    items = [(f"s3://b/{i:04d}", 14_000_000) for i in range(1000)]  # a thousand AIA-sized files
    batches = plan_batches(items, threads=8)
    assert [url for batch in batches for url, _ in batch] == [url for url, _ in items]  # all, in order
    assert 20 <= len(batches) <= 40  # about three tasks per thread
    assert max(sum(s for _, s in b) for b in batches) <= 512 * 2**20
    small = plan_batches([(f"s3://b/{i}", 1000) for i in range(10)], threads=4)
    assert len(small) >= 4  # tiny files still spread over every thread
    assert plan_batches([], threads=4) == []


def test_burst_equals_a_serial_loop(aia_bucket, local_client, s3_server):
    files = aia_bucket.query("aia_94")
    run = burst_map(
        mean_rate, files, client=local_client, storage_options=s3_server.storage_options, progress=False
    )
    assert run.failures.empty
    assert list(run.results["datakey"]) == list(files["datakey"])  # in catalog order, catalog columns kept
    assert {"start", "stop", "filesize", "rate", "date_obs"} <= set(run.results.columns)
    expected = serial_loop(files, s3_server.storage_options)
    assert dict(zip(run.results["datakey"], run.results["rate"], strict=True)) == pytest.approx(expected)
    report = run.report
    assert (report.files, report.succeeded, report.failed, report.workers, report.threads) == (
        COUNT,
        COUNT,
        0,
        2,
        2,
    )
    assert report.bytes == int(files["filesize"].sum())
    assert report.files_per_second > 0 and "24 of 24 files" in str(report)


def test_failures_are_listed_per_file_with_the_reason(aia_bucket, local_client, s3_server):
    files = aia_bucket.query("aia_94").head(6).copy()
    folder = s3_server.root / "burst-aia"
    corrupt = folder / "bad" / "corrupt.fits"
    corrupt.parent.mkdir(exist_ok=True)
    corrupt.write_bytes(SERIES.fits_bytes(0)[:5000])  # a truncated upload
    extra = files.iloc[:2].copy()
    extra["datakey"] = ["s3://burst-aia/bad/corrupt.fits", "s3://burst-aia/bad/never-uploaded.fits"]
    files = pd.concat([files, extra], ignore_index=True)

    def picky(image, header):
        if header["DATE-OBS"].startswith("2024-05-08T01:00"):
            raise ValueError("this one is odd")
        return float(image.mean())

    run = burst_map(
        picky, files, client=local_client, storage_options=s3_server.storage_options, progress=False
    )
    assert len(run.results) + len(run.failures) == len(files)  # nothing dropped
    reasons = dict(zip(run.failures["datakey"], run.failures["reason"], strict=True))
    kinds = dict(zip(run.failures["datakey"], run.failures["kind"], strict=True))
    assert kinds["s3://burst-aia/bad/never-uploaded.fits"] == "missing"
    assert reasons["s3://burst-aia/bad/never-uploaded.fits"] == "no such object"
    assert kinds["s3://burst-aia/bad/corrupt.fits"] == "decode"
    assert reasons["s3://burst-aia/bad/corrupt.fits"].startswith("not a readable FITS file")
    odd = files["datakey"].iloc[2]
    assert kinds[odd] == "function" and "ValueError: this one is odd (at picky, line" in reasons[odd]
    assert run.report.failed == 3 and run.report.succeeded == 5


def test_results_stack_into_xarray(aia_bucket, local_client, s3_server):
    files = aia_bucket.query("aia_94").head(4)
    run = burst_map(
        lambda image, header: image[::64, ::64].astype(float),
        files,
        client=local_client,
        storage_options=s3_server.storage_options,
        progress=False,
    )
    cube = run.to_xarray()
    assert cube.shape == (4, 4, 4) and cube.dims[0] == "start"
    assert list(cube["datakey"].values) == list(files["datakey"])


def test_public_bucket_is_read_anonymously(public_s3_server, local_client):
    folder = public_s3_server.root / "open-data"
    (folder / "aia").mkdir(parents=True, exist_ok=True)
    urls = []
    for i in range(3):
        (folder / "aia" / f"f{i}.fits").write_bytes(SERIES.fits_bytes(i))
        urls.append(f"s3://open-data/aia/f{i}.fits")
    options = public_s3_server.storage_options
    assert options["anon"] is True and "key" not in options
    run = burst_map(mean_rate, urls, client=local_client, storage_options=options, progress=False)
    assert run.failures.empty and len(run.results) == 3


def test_a_cutout_fetches_only_the_tiles_it_needs(s3_server, tmp_path):
    big = SyntheticAIA(size=4096, wavelength=94, start=SERIES.start, cadence=timedelta(minutes=1))
    data = big.fits_bytes(0)
    path = s3_server.root / "burst-aia" / "full" / "aia_4096.fits"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    pixels, header, fetched = read_cutout(
        fs, "s3://burst-aia/full/aia_4096.fits", np.s_[2000:2064, 2000:2064]
    )
    with fits.open(io.BytesIO(data)) as hdul:
        expected = hdul[1].data[2000:2064, 2000:2064]
    np.testing.assert_array_equal(pixels, expected)
    assert header["NAXIS1"] == 4096
    # the headers and a few 64x64 tiles, in 256 KiB blocks: a small fraction of the file
    assert fetched <= 4 * 256 * 1024, (fetched, len(data))
    assert fetched < len(data) / 10
    print(f"cutout fetched {fetched} of {len(data)} bytes")


def test_cutouts_over_many_files(aia_bucket, local_client, s3_server):
    files = aia_bucket.query("aia_94").head(8)
    run = burst_map(
        Cutout[64:96, 128:160],
        files,
        client=local_client,
        storage_options=s3_server.storage_options,
        reader="lazy",
    )
    assert run.failures.empty
    cube = run.to_xarray(column="cutout")
    assert cube.shape == (8, 32, 32)
    assert run.results["date_obs"].iloc[0].startswith("2024-05-08T00:00")
    assert run.report.bytes == int(run.results["bytes_read"].sum()) > 0
