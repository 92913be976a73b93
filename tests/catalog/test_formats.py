"""Index formats (csv, csv-zip, parquet), declared extra columns, registries and bad input."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pandas as pd
import pytest
import s3fs

from platform_tools.catalog import (
    CatalogError,
    CatalogRegistry,
    CloudCatalog,
    DatasetInfo,
    IndexedFile,
    NoFilesError,
    Registry,
    catalog_entry,
    write_dataset,
)
from tests.catalog.helpers import make_files

pytestmark = pytest.mark.integration  # through a real S3 server (rclone)


def _fs(server) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(**server.storage_options)


INFO = DatasetInfo(
    parameters=[
        {"name": "wavelength", "type": "integer", "units": "angstrom"},
        {"name": "exptime", "type": "double", "units": "s"},
        {"name": "quality", "type": "string"},
    ]
)


def _with_extras(files: list[IndexedFile]) -> list[IndexedFile]:
    return [
        IndexedFile(f.start, f.stop, f.datakey, f.filesize, (94, 2.9 + i / 10, "ok"))
        for i, f in enumerate(files)
    ]


@pytest.mark.parametrize("indextype", ["csv", "csv-zip", "parquet"])
def test_every_index_type_round_trips_with_declared_columns(bucket, s3_server, indextype):
    name, folder = bucket
    files = _with_extras(make_files(datetime(2023, 12, 31, 22), 5, timedelta(hours=1), bucket=name))
    entry = catalog_entry(
        dataset_id="series", index=f"s3://{name}/index/", title="t", files=files, indextype=indextype
    )
    fs = _fs(s3_server)
    written = write_dataset(fs, f"s3://{name}", entry, files, INFO, bucket_name=name)
    suffix = {"csv": "csv", "csv-zip": "csv.zip", "parquet": "parquet"}[indextype]
    assert sorted(p.name for p in (folder / "index").iterdir()) == [
        "series.json",
        f"series_2023.{suffix}",
        f"series_2024.{suffix}",
    ]
    assert written[-1] == f"s3://{name}/catalog.json"
    catalog = CloudCatalog(f"s3://{name}", **s3_server.storage_options)
    frame = catalog.query("series")
    assert list(frame.columns) == ["start", "stop", "datakey", "filesize", "wavelength", "exptime", "quality"]
    assert frame["wavelength"].tolist() == [94] * 5
    assert frame["exptime"].tolist() == pytest.approx([2.9, 3.0, 3.1, 3.2, 3.3])
    assert frame["start"].iloc[2] == pd.Timestamp("2024-01-01T00:00Z")
    assert catalog.info("series") == INFO


def test_a_rebuild_replaces_the_entry_and_removes_stale_indices(bucket, s3_server):
    name, folder = bucket
    fs = _fs(s3_server)
    first = make_files(datetime(2022, 6, 1), 3, timedelta(days=365), bucket=name)  # 2022, 2023, 2024
    entry = catalog_entry(dataset_id="series", index=f"s3://{name}/index/", title="t", files=first)
    write_dataset(fs, f"s3://{name}", entry, first, bucket_name=name)
    other = catalog_entry(dataset_id="other", index=f"s3://{name}/index/", title="o", files=first)
    write_dataset(fs, f"s3://{name}", other, first, bucket_name=name)
    second = make_files(datetime(2024, 6, 1), 2, timedelta(days=1), bucket=name)
    again = catalog_entry(
        dataset_id="series", index=f"s3://{name}/index/", title="t2", files=second, indextype="parquet"
    )
    write_dataset(fs, f"s3://{name}", again, second, bucket_name=name)
    names = sorted(p.name for p in (folder / "index").iterdir())
    assert names == ["other_2022.csv", "other_2023.csv", "other_2024.csv", "series_2024.parquet"]
    catalog = json.loads((folder / "catalog.json").read_text())
    assert [(e["id"], e["title"]) for e in catalog["catalog"]] == [("other", "o"), ("series", "t2")]


def test_undeclared_extra_columns_are_named(bucket, s3_server):
    name, folder = bucket
    files = _with_extras(make_files(datetime(2024, 1, 1), 2, timedelta(hours=1), bucket=name))
    entry = catalog_entry(dataset_id="series", index=f"s3://{name}/index/", title="t", files=files)
    write_dataset(_fs(s3_server), f"s3://{name}", entry, files, INFO, bucket_name=name)
    (folder / "index" / "series.json").write_text(
        json.dumps({"version": "1.0", "parameters": [{"name": "wavelength"}]})
    )
    with pytest.raises(
        CatalogError, match=r"series_2024.csv: extra columns \['wavelength', 'exptime', 'quality'\]"
    ):
        CloudCatalog(f"s3://{name}", **s3_server.storage_options).query("series")


def test_a_badly_typed_extra_value_names_its_row(bucket, s3_server):
    name, folder = bucket
    files = _with_extras(make_files(datetime(2024, 1, 1), 3, timedelta(hours=1), bucket=name))
    entry = catalog_entry(dataset_id="series", index=f"s3://{name}/index/", title="t", files=files)
    write_dataset(_fs(s3_server), f"s3://{name}", entry, files, INFO, bucket_name=name)
    index = folder / "index" / "series_2024.csv"
    index.write_text(index.read_text().replace(",94,3.0,ok", ",ninety-four,3.0,ok"))
    with pytest.raises(CatalogError, match="row 2: wavelength 'ninety-four' is not integer"):
        CloudCatalog(f"s3://{name}", **s3_server.storage_options).query("series")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda row: row.replace("s3://", "/", 1), "datakey '/"),
        (lambda row: row.replace(",1001", ",-5"), "filesize '-5' is not a size in bytes"),
        (lambda row: "2024-01-01T09:00:00Z," + row.split(",", 1)[1], "stop is before start"),
    ],
    ids=["relative-key", "negative-size", "stop-before-start"],
)
def test_malformed_rows_are_named(bucket, s3_server, change, message):
    name, folder = bucket
    files = make_files(datetime(2024, 1, 1), 3, timedelta(hours=1), bucket=name)
    entry = catalog_entry(dataset_id="series", index=f"s3://{name}/index/", title="t", files=files)
    write_dataset(_fs(s3_server), f"s3://{name}", entry, files, bucket_name=name)
    index = folder / "index" / "series_2024.csv"
    lines = index.read_text().splitlines()
    lines[2] = change(lines[2])
    index.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        CatalogError, match=f"series index s3://{name}/index/series_2024.csv: row 2: {message}"
    ):
        CloudCatalog(f"s3://{name}", **s3_server.storage_options).query("series")


def test_a_range_with_no_files_says_what_the_dataset_covers(bucket, s3_server):
    name, _ = bucket
    files = make_files(datetime(2024, 1, 1), 3, timedelta(hours=1), bucket=name)
    entry = catalog_entry(dataset_id="series", index=f"s3://{name}/index/", title="t", files=files)
    write_dataset(_fs(s3_server), f"s3://{name}", entry, files, bucket_name=name)
    catalog = CloudCatalog(f"s3://{name}", **s3_server.storage_options)
    with pytest.raises(
        NoFilesError,
        match=r"series: no files between 2024-03-01T00:00:00Z and 2024-03-02.*"
        r"covers 2024-01-01T00:00:00Z to 2024-01-01T02:00:03Z",
    ):
        catalog.query("series", "2024-03-01", "2024-03-02")
    with pytest.raises(CatalogError, match="'next tuesday' is not a time"):
        catalog.query("series", "next tuesday")


def test_a_bucket_that_denies_access_is_named(bucket, s3_server):
    name, _ = bucket
    files = make_files(datetime(2024, 1, 1), 1, timedelta(hours=1), bucket=name)
    entry = catalog_entry(dataset_id="series", index=f"s3://{name}/index/", title="t", files=files)
    write_dataset(_fs(s3_server), f"s3://{name}", entry, files, bucket_name=name)
    # Keys the server does not accept: 403, as AWS answers a private bucket. (rclone answers
    # unsigned requests with 400 UnsupportedAlgorithm where AWS says 403 AccessDenied.)
    denied = dict(s3_server.storage_options, key="not-a-key", secret="not-a-secret")
    with pytest.raises(
        CatalogError, match=f"s3://{name}/catalog.json: access denied reading the CloudCatalog"
    ):
        CloudCatalog(f"s3://{name}", **denied).datasets()


def test_registry_lists_buckets_and_opens_their_catalogs(bucket, s3_server, tmp_path):
    name, _ = bucket
    files = make_files(datetime(2024, 1, 1), 2, timedelta(hours=1), bucket=name)
    entry = catalog_entry(dataset_id="series", index=f"s3://{name}/index/", title="t", files=files)
    write_dataset(_fs(s3_server), f"s3://{name}", entry, files, bucket_name=name)
    registry = Registry(
        registry=[{"endpoint": f"s3://{name}/", "name": "Test archive", "region": "us-east-1"}]
    )
    path = tmp_path / "registry.json"
    path.write_text(registry.model_dump_json())
    opened = CatalogRegistry(str(path))
    assert opened.buckets()[["name", "endpoint"]].values.tolist() == [["Test archive", f"s3://{name}/"]]
    assert len(opened.catalog("Test archive", **s3_server.storage_options).query("series")) == 2
    with pytest.raises(CatalogError, match="no bucket 'nope' in the registry \\(buckets: Test archive\\)"):
        opened.catalog("nope")
    path.write_text('{"registry": [{"name": "x"}]}')
    with pytest.raises(CatalogError, match="not a valid CloudCatalog registry: .*endpoint"):
        CatalogRegistry(str(path))
