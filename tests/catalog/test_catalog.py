"""CloudCatalog writing and reading, on a real filesystem through fsspec."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pandas as pd
import pytest

from platform_tools.catalog import (
    BucketCatalog,
    CatalogError,
    CloudCatalog,
    catalog_entry,
    catalog_json,
    format_time,
    index_files,
    index_name,
    parse_time,
)
from tests.catalog.helpers import make_files

pytestmark = pytest.mark.integration  # reads through a real S3 server (rclone)


def write_bucket(bucket, files, dataset_id="series") -> str:
    name, folder = bucket
    (folder / "index").mkdir()
    for year, text in index_files(files).items():
        (folder / "index" / index_name(dataset_id, year)).write_text(text)
    entry = catalog_entry(dataset_id=dataset_id, index=f"s3://{name}/index/", title="A series", files=files)
    catalog = BucketCatalog(endpoint=f"s3://{name}/", name="test", contact="me", catalog=[entry])
    (folder / "catalog.json").write_text(catalog_json(catalog))
    return f"s3://{name}"


def open_catalog(url, s3_server) -> CloudCatalog:
    return CloudCatalog(url, **s3_server.storage_options)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-08T06:20:00.123Z", datetime(2024, 5, 8, 6, 20, 0, 123000)),
        ("2024-05-08T06:20Z", datetime(2024, 5, 8, 6, 20)),
        ("2024-05-08Z", datetime(2024, 5, 8)),
        ("2024-05Z", datetime(2024, 5, 1)),
        ("2024Z", datetime(2024, 1, 1)),
    ],
)
def test_times_allow_truncation(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["2024-05-08T06:20:00", "2024-05-08 06:20Z", "yesterday"])
def test_times_need_the_restricted_format(text):
    with pytest.raises(ValueError, match="restricted ISO 8601"):
        parse_time(text)


def test_index_is_per_year_sorted_with_header():
    files = make_files(datetime(2023, 12, 31, 22), 4, timedelta(hours=1))
    texts = index_files(reversed(files))
    assert sorted(texts) == [2023, 2024]
    lines = texts[2023].splitlines()
    assert lines[0] == "start,stop,datakey,filesize"
    assert index_files(files, header="comment")[2023].startswith("# start,stop,datakey,filesize\n")
    assert lines[1] == "2023-12-31T22:00:00Z,2023-12-31T22:00:03Z,s3://bkt/data/f00000.fits,1000"
    assert len(texts[2024].splitlines()) == 3


def test_round_trip_query_across_years(bucket, s3_server):
    files = make_files(datetime(2023, 12, 31, 20), 10, timedelta(hours=1))
    catalog = open_catalog(write_bucket(bucket, files), s3_server)
    assert list(catalog.datasets().id) == ["series"]
    everything = catalog.query("series")
    assert len(everything) == 10
    assert list(everything.columns) == ["start", "stop", "datakey", "filesize"]
    assert everything.start.is_monotonic_increasing
    part = catalog.query("series", "2023-12-31T23:30Z", "2024-01-01T02:00Z")
    assert list(part.datakey) == [f"s3://bkt/data/f{i:05d}.fits" for i in (4, 5)]
    assert part.start.iloc[0] == pd.Timestamp("2024-01-01T00:00Z")


def test_query_needs_only_the_years_asked(bucket, s3_server):
    files = make_files(datetime(2022, 6, 1), 3, timedelta(days=365))
    url = write_bucket(bucket, files)
    (bucket[1] / "index" / "series_2022.csv").write_text("garbage that would fail\n")
    assert len(open_catalog(url, s3_server).query("series", "2023-01-01Z", "2025-01-01Z")) == 2


def test_entry_times_span_the_files():
    files = make_files(datetime(2024, 5, 8), 3, timedelta(minutes=20))
    entry = catalog_entry(dataset_id="x", index="s3://b/index/", title="t", files=files)
    assert (entry.start, entry.stop) == ("2024-05-08T00:00:00Z", "2024-05-08T00:40:03Z")
    assert entry.multiyear is None
    assert format_time(datetime(2024, 1, 2, 3, 4, 5, 999)) == "2024-01-02T03:04:05Z"


def test_unknown_dataset_names_the_known_ones(bucket, s3_server):
    catalog = open_catalog(
        write_bucket(bucket, make_files(datetime(2024, 1, 1), 2, timedelta(hours=1))), s3_server
    )
    with pytest.raises(CatalogError, match="no dataset 'nope' in catalog 'test' \\(datasets: series\\)"):
        catalog.query("nope")


def test_malformed_row_is_named(bucket, s3_server):
    files = make_files(datetime(2024, 1, 1), 3, timedelta(hours=1))
    url = write_bucket(bucket, files)
    index = bucket[1] / "index" / "series_2024.csv"
    lines = index.read_text().splitlines()
    lines[2] = lines[2].replace("2024-01-01T01:00:00Z", "not-a-time", 1)
    index.write_text("\n".join(lines) + "\n")
    with pytest.raises(CatalogError, match=r"series index .*series_2024.csv: row 2: start 'not-a-time'"):
        open_catalog(url, s3_server).query("series")


def test_wrong_columns_are_named(bucket, s3_server):
    url = write_bucket(bucket, make_files(datetime(2024, 1, 1), 1, timedelta(hours=1)))
    (bucket[1] / "index" / "series_2024.csv").write_text("start,key,size\n2024-01-01Z,a,1\n")
    with pytest.raises(CatalogError, match="first columns must be start, stop, datakey, filesize"):
        open_catalog(url, s3_server).query("series")


def test_missing_catalog_is_named(bucket, s3_server):
    with pytest.raises(CatalogError, match="no catalog.json at the bucket root"):
        open_catalog(f"s3://{bucket[0]}", s3_server).datasets()


def test_invalid_catalog_is_named(bucket, s3_server):
    (bucket[1] / "catalog.json").write_text(json.dumps({"name": "x", "catalog": [{"id": "a b"}]}))
    with pytest.raises(CatalogError, match="not a valid CloudCatalog"):
        open_catalog(f"s3://{bucket[0]}", s3_server).datasets()


def test_stop_before_start_is_refused(bucket, s3_server):
    catalog = open_catalog(
        write_bucket(bucket, make_files(datetime(2024, 1, 1), 2, timedelta(hours=1))), s3_server
    )
    with pytest.raises(CatalogError, match="is before start"):
        catalog.query("series", "2024-01-02Z", "2024-01-01Z")
