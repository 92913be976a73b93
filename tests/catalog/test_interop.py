"""Interoperability with HelioCloud's own client, `cloudcatalog` from PyPI, both ways.

The bucket is served by rclone with no keys, as AWS serves a public Open Data bucket;
cloudcatalog reaches it through boto3 with ``endpoint_url``.
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import datetime, timedelta

import cloudcatalog
import pandas as pd
import pytest
import s3fs
from cloudcatalog.updater.catalog_updater import update_catalog_from_csv
from cloudcatalog.validators import validate_json

from platform_tools.catalog import CloudCatalog, DatasetInfo, catalog_entry, write_dataset
from tests.catalog.helpers import make_files

pytestmark = pytest.mark.integration


@pytest.fixture
def public_bucket(public_s3_server, request):
    name = "pub-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    (public_s3_server.root / name).mkdir()
    return name, public_s3_server.root / name


def test_cloudcatalog_reads_what_parhelion_writes(public_bucket, public_s3_server, monkeypatch):
    name, folder = public_bucket
    files = make_files(datetime(2023, 12, 31, 22), 6, timedelta(hours=1), bucket=name)
    entry = catalog_entry(dataset_id="aia_94", index=f"s3://{name}/index/", title="AIA 94", files=files)
    fs = s3fs.S3FileSystem(**public_s3_server.storage_options)
    write_dataset(fs, f"s3://{name}", entry, files, bucket_name=name, contact="me@example.org")

    # cloudcatalog passes its client arguments when it reads catalog.json but not index files,
    # so the endpoint goes where the platform puts it for users: botocore's own variable.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", public_s3_server.url)
    monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
    theirs = cloudcatalog.CloudCatalog(f"s3://{name}")
    assert theirs.get_entries_id_title() == [("aia_94", "AIA 94")]
    frame = theirs.request_cloud_catalog("aia_94", "2023-12-31T23:30:00Z", "2024-01-01T02:00:00Z")
    assert list(frame["datakey"]) == [f"s3://{name}/data/f{i:05d}.fits" for i in (2, 3)]
    assert list(frame["filesize"]) == [1002, 1003]
    ours = CloudCatalog(f"s3://{name}", **public_s3_server.storage_options).query(
        "aia_94", "2023-12-31T23:30:00Z", "2024-01-01T02:00:00Z"
    )
    assert list(ours["datakey"]) == list(frame["datakey"])

    # HelioCloud's validator has nothing to say about our catalog.json
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        validate_json.validator(str(folder / "catalog.json"))
    assert printed.getvalue().splitlines() == ["Validating dataset #1 of 1"]


def test_parhelion_reads_what_heliocloud_tools_write(public_bucket, public_s3_server, tmp_path):
    """catalog.json made by cloudcatalog's updater; an index as HelioCloud publishes them
    ('# ' header with spaces, millisecond times); an info file for an extra column."""
    name, folder = public_bucket
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(
        json.dumps(
            {
                "version": "1.0",
                "endpoint": f"s3://{name}/",
                "name": "HelioCloud-style archive",
                "egress": "none",
                "status": {"code": 1200, "message": "OK"},
                "contact": "someone@example.org",
                "catalog": [],
            }
        )
    )
    stub = tmp_path / "cat.csv"
    stub.write_text(
        "id,index,title,start,stop,modification,indextype,filetype\n"
        f"mms1_fgm,s3://{name}/mms/,MMS1 FGM survey,2015-09-01T00:00:00Z,2015-09-02T00:00:00Z,"
        "2024-01-01T00:00:00Z,csv,cdf\n"
    )
    assert update_catalog_from_csv(str(catalog_path), str(stub))
    (folder / "catalog.json").write_text(catalog_path.read_text())
    (folder / "mms").mkdir()
    (folder / "mms" / "mms1_fgm_2015.csv").write_text(
        "# start, stop, datakey, filesize, quality\n"
        f"2015-09-01T00:00:00.000Z,2015-09-01T23:59:59.999Z,s3://{name}/mms/a.cdf,1200,1\n"
        f"2015-09-02T00:00:00.000Z,2015-09-02T23:59:59.999Z,s3://{name}/mms/b.cdf,1300,0\n"
    )
    info = DatasetInfo(parameters=[{"name": "quality", "type": "integer"}])
    (folder / "mms" / "mms1_fgm.json").write_text(info.model_dump_json())

    ours = CloudCatalog(f"s3://{name}", **public_s3_server.storage_options)
    assert ours.datasets()["id"].tolist() == ["mms1_fgm"]
    frame = ours.query("mms1_fgm", "2015-09-01T12:00Z", "2015-09-02T12:00Z")
    assert frame["datakey"].tolist() == [f"s3://{name}/mms/a.cdf", f"s3://{name}/mms/b.cdf"]
    assert frame["quality"].tolist() == [1, 0]
    assert frame["stop"].iloc[0] == pd.Timestamp("2015-09-01T23:59:59.999Z")
