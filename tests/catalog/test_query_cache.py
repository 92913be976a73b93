"""Year indices kept parsed between queries, re-read when the object changes; both parsers agree."""

from __future__ import annotations

import io
import os
import zipfile
from datetime import datetime, timedelta

import pandas as pd
import pytest

from platform_tools.catalog import CatalogError, CloudCatalog, IndexedFile, NoFilesError
from platform_tools.catalog.client import _decode, _normalise, _parse
from platform_tools.catalog.spec import CatalogEntry, DatasetInfo
from platform_tools.catalog.yearindex import IndexCache, YearIndex, fast_csv
from tests.catalog.helpers import make_files
from tests.catalog.test_catalog import write_bucket

INFO = DatasetInfo(
    parameters=[
        {"name": "wavelength", "type": "integer"},
        {"name": "exptime", "type": "double"},
        {"name": "quality", "type": "string"},
        {"name": "good", "type": "boolean"},
    ]
)


def _counting_catalog(url, s3_server, monkeypatch) -> tuple[CloudCatalog, list[str]]:
    """A catalog on its own filesystem instance whose GETs are recorded (and still made)."""
    catalog = CloudCatalog(url, skip_instance_cache=True, **s3_server.storage_options)
    gets: list[str] = []
    cat_file, cat = catalog.fs.cat_file, catalog.fs.cat

    def counted_cat_file(path, *args, **kwargs):
        gets.append(path)
        return cat_file(path, *args, **kwargs)

    def counted_cat(paths, *args, **kwargs):
        gets.extend(paths)
        return cat(paths, *args, **kwargs)

    monkeypatch.setattr(catalog.fs, "cat_file", counted_cat_file)
    monkeypatch.setattr(catalog.fs, "cat", counted_cat)
    return catalog, gets


@pytest.mark.integration
def test_a_warm_query_reads_the_index_once_until_the_object_changes(bucket, s3_server, monkeypatch):
    name, folder = bucket
    files = make_files(datetime(2024, 3, 1), 6, timedelta(hours=1))
    catalog, gets = _counting_catalog(write_bucket(bucket, files), s3_server, monkeypatch)
    index = folder / "index" / "series_2024.csv"
    key = f"s3://{name}/index/series_2024.csv"

    first = catalog.query("series", "2024-03-01T01:00Z", "2024-03-01T04:00Z")
    again = catalog.query("series", "2024-03-01T02:00Z", "2024-03-01T06:00Z")
    assert gets.count(key) == 1  # the second query answered from the parsed index
    assert list(first.datakey) == [f"s3://bkt/data/f{i:05d}.fits" for i in (1, 2, 3)]
    assert list(again.datakey) == [f"s3://bkt/data/f{i:05d}.fits" for i in (2, 3, 4, 5)]

    # Rewritten with the same size and modification time: only the content (the ETag) differs.
    before = index.stat()
    index.write_text(index.read_text().replace("f00003.fits", "g00003.fits"))
    os.utime(index, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert index.stat().st_size == before.st_size
    changed = catalog.query("series", "2024-03-01T02:00Z", "2024-03-01T06:00Z")
    assert gets.count(key) == 2
    assert list(changed.datakey)[1] == "s3://bkt/data/g00003.fits"

    index.unlink()  # a removed index is not answered from memory
    with pytest.raises(NoFilesError):
        catalog.query("series", "2024-03-01T02:00Z", "2024-03-01T06:00Z")


@pytest.mark.integration
def test_years_without_an_index_are_skipped_and_the_others_kept(bucket, s3_server, monkeypatch):
    files = make_files(datetime(2022, 6, 1), 2, timedelta(days=2 * 366))  # 2022 and 2024, not 2023
    catalog, gets = _counting_catalog(write_bucket(bucket, files), s3_server, monkeypatch)
    for _ in range(2):
        frame = catalog.query("series", "2022-01-01Z", "2025-01-01Z")
        assert list(frame.datakey) == ["s3://bkt/data/f00000.fits", "s3://bkt/data/f00001.fits"]
    indices = [key for key in gets if "/index/series_" in key]
    assert sorted(indices) == [f"s3://{bucket[0]}/index/series_{year}.csv" for year in (2022, 2024)]


@pytest.mark.integration
def test_a_long_file_that_starts_before_the_range_is_found(bucket, s3_server):
    """The binary search starts the longest file's length before the range."""
    hourly = make_files(datetime(2024, 3, 1), 72, timedelta(hours=1))
    long = IndexedFile(datetime(2024, 3, 1, 0, 30), datetime(2024, 3, 3, 12), "s3://bkt/data/long.fits", 5)
    catalog = CloudCatalog(write_bucket(bucket, [*hourly, long]), **s3_server.storage_options)
    frame = catalog.query("series", "2024-03-03T10:00Z", "2024-03-03T12:00Z")
    assert list(frame.datakey) == [
        "s3://bkt/data/long.fits",
        *(f"s3://bkt/data/f{i:05d}.fits" for i in (58, 59)),
    ]
    assert frame.start.is_monotonic_increasing


def _entry(indextype: str) -> CatalogEntry:
    return CatalogEntry(
        id="series",
        index="s3://bkt/index/",
        title="t",
        start="2024Z",
        stop="2025Z",
        modification="2024Z",
        indextype=indextype,
    )


HELIOCLOUD_STYLE = (
    "# start, stop, datakey, filesize, wavelength, exptime, quality, good\n"
    "2024-01-01T00:00:00.000Z,2024-01-01T00:00:02.900Z,s3://b/a.fits,9300000, 94, 2.9, ok,true\n"
    "2024-01-01T00:00:12Z,2024-01-01T00:00:14Z,s3://b/b.fits,9300001,94,,NA,False\n"
    "2024-01-01T00:00:24Z,2024-01-01T00:00:26Z,s3://b/c.fits,9300002,171,2.0,,true\n"
)


@pytest.mark.unit
@pytest.mark.parametrize("indextype", ["csv", "csv-zip"])
def test_pyarrow_and_pandas_read_an_index_alike(indextype):
    raw = HELIOCLOUD_STYLE.encode()
    if indextype == "csv-zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("series_2024.csv", HELIOCLOUD_STYLE)
        raw = buffer.getvalue()
    fast = fast_csv(raw, indextype)
    assert fast is not None and str(fast[fast.columns[0]].dtype) == "datetime64[us, UTC]"
    expected = _normalise(_decode(raw, _entry(indextype), "k"), INFO, "w")
    pd.testing.assert_frame_equal(_normalise(fast, INFO, "w"), expected)
    assert expected["quality"].isna().tolist() == [False, True, True]


@pytest.mark.unit
def test_what_pyarrow_will_not_read_is_left_to_pandas():
    truncated = "start,stop,datakey,filesize\n2024-05-08Z,2024-05-09Z,s3://b/a.fits,1\n"
    assert fast_csv(truncated.encode(), "csv") is None
    ragged = "start,stop,datakey,filesize\n2024-05-08T00:00Z,2024-05-09T00:00Z,s3://b/a.fits\n"
    assert fast_csv(ragged.encode(), "csv") is None
    quoted = b'start,stop,datakey,filesize,note\n2024-05-08T00:00Z,2024-05-09T00:00Z,s3://b/a,1, "x, y"\n'
    assert fast_csv(quoted, "csv") is None
    # pyarrow reads an empty time as a null; the check fails and pandas' reading names the row
    empty = (
        b"start,stop,datakey,filesize\n2024-05-08T00:00Z,2024-05-09T00:00Z,s3://b/a.fits,1\n,,s3://b/b,2\n"
    )
    assert fast_csv(empty, "csv") is not None
    with pytest.raises(CatalogError, match=r"^series index k: row 2: start nan is not a time$"):
        _parse(empty, _entry("csv"), "k", None)


@pytest.mark.unit
def test_the_least_recently_used_indices_go_beyond_the_row_limit():
    def index(hour: int) -> YearIndex:
        start = pd.Timestamp(2024, 1, 1, hour, tz="UTC")
        return YearIndex.of(("etag",), pd.DataFrame({"start": [start] * 2, "stop": [start] * 2}))

    cache = IndexCache(max_rows=4)
    cache.keep("a", index(0))
    cache.keep("b", index(1))
    assert cache.current("a", ("etag",)) is not None  # a is now the most recent
    cache.keep("c", index(2))
    assert cache.current("b", ("etag",)) is None
    assert cache.current("a", ("etag",)) is not None and cache.current("c", ("etag",)) is not None
    assert cache.current("a", ("other",)) is None  # another stamp: not current
