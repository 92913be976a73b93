"""An AIA-like archive on the session's S3 server, and a LocalCluster, for burst tests."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import s3fs

from platform_tools.catalog import CloudCatalog, IndexedFile, catalog_entry, write_dataset
from platform_tools.local.aia_synthetic import SyntheticAIA

COUNT = 24
SERIES = SyntheticAIA(size=256, wavelength=94, start=datetime(2024, 5, 8), cadence=timedelta(minutes=30))


@pytest.fixture(scope="session")
def aia_bucket(s3_server):
    """s3://burst-aia: 24 tile-compressed AIA-like images and their CloudCatalog."""
    name = "burst-aia"
    rows = []
    for i in range(COUNT):
        moment = SERIES.time_of(i)
        key = f"aia/{moment:%Y/%m/%d}/aia_0094_{moment:%Y%m%dT%H%M%S}Z.fits"
        path = s3_server.root / name / key
        path.parent.mkdir(parents=True, exist_ok=True)
        data = SERIES.fits_bytes(i)
        path.write_bytes(data)
        rows.append(IndexedFile(moment, moment + timedelta(seconds=2.9), f"s3://{name}/{key}", len(data)))
    entry = catalog_entry(dataset_id="aia_94", index=f"s3://{name}/index/", title="AIA 94", files=rows)
    write_dataset(
        s3fs.S3FileSystem(**s3_server.storage_options), f"s3://{name}", entry, rows, bucket_name=name
    )
    return CloudCatalog(f"s3://{name}", **s3_server.storage_options)


@pytest.fixture(scope="module")
def local_client():
    """A LocalCluster of 2 single-threaded workers on 127.0.0.1, closed at the end."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, memory_limit="1GiB"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
