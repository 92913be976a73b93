"""Write a CloudCatalog: per-year index files, a dataset's info file and catalog.json.

Index files follow the spec exactly: rows in time order, first columns ``start, stop,
datakey, filesize``, extra columns only as declared in ``<id>.json``, times as restricted
ISO 8601 UTC strings to the second, one format per dataset, and csv, csv-zip or parquet.
The writer works on any fsspec filesystem; the local platform uses it on the folder
rclone serves as a bucket, ``parhelion catalog build`` on S3 itself.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from platform_tools.catalog.spec import (
    INDEX_COLUMNS,
    BucketCatalog,
    CatalogEntry,
    DatasetInfo,
    format_time,
    index_name,
    info_name,
)


@dataclass(frozen=True)
class IndexedFile:
    """One row of an index: the file's time span, full s3:// key, size in bytes, extras."""

    start: datetime
    stop: datetime
    datakey: str
    filesize: int
    extra: tuple[Any, ...] = field(default=())


def _rows_by_year(files: Iterable[IndexedFile]) -> dict[int, list[IndexedFile]]:
    """Rows per year in time order; a file spanning years goes under its start year (``multiyear``)."""
    by_year: dict[int, list[IndexedFile]] = defaultdict(list)
    for item in files:
        by_year[item.start.year].append(item)
    return {year: sorted(rows, key=lambda i: (i.start, i.datakey)) for year, rows in sorted(by_year.items())}


#: The header line of CSV indices. The spec allows a '#'-prefixed header; HelioCloud's
#: own client (cloudcatalog <= 1.3.3) then renames the column in place, which pandas 3
#: refuses (a read-only Index), so it cannot read such files. A header of the plain column
#: names is read alike by cloudcatalog, pandas and Parhelion; "comment" writes the '#' form.
HEADER_STYLES = ("plain", "comment")


def _csv_text(rows: list[IndexedFile], extra_names: tuple[str, ...], header: str = "plain") -> str:
    out = io.StringIO()
    out.write(("# " if header == "comment" else "") + ",".join((*INDEX_COLUMNS, *extra_names)) + "\n")
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow(
            [format_time(row.start), format_time(row.stop), row.datakey, row.filesize, *row.extra]
        )
    return out.getvalue()


def index_files(
    files: Iterable[IndexedFile], extra_names: tuple[str, ...] = (), header: str = "plain"
) -> dict[int, str]:
    """CSV text per year (name each with ``index_name``), with a header line."""
    return {year: _csv_text(rows, extra_names, header) for year, rows in _rows_by_year(files).items()}


def encode_indices(
    dataset_id: str, files: Iterable[IndexedFile], indextype: str = "csv", extra_names: tuple[str, ...] = ()
) -> dict[str, bytes]:
    """{file name: bytes} of every year's index in ``indextype``."""
    encoded = {}
    for year, rows in _rows_by_year(files).items():
        name = index_name(dataset_id, year, indextype)
        if indextype == "csv":
            encoded[name] = _csv_text(rows, extra_names).encode()
        elif indextype == "csv-zip":
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(index_name(dataset_id, year, "csv"), _csv_text(rows, extra_names))
            encoded[name] = buffer.getvalue()
        elif indextype == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            columns = {
                "start": [format_time(r.start) for r in rows],
                "stop": [format_time(r.stop) for r in rows],
                "datakey": [r.datakey for r in rows],
                "filesize": pa.array([r.filesize for r in rows], pa.int64()),
            }
            for position, name_ in enumerate(extra_names):
                columns[name_] = [r.extra[position] for r in rows]
            buffer = io.BytesIO()
            pq.write_table(pa.table(columns), buffer)
            encoded[name] = buffer.getvalue()
        else:
            raise ValueError(f"indextype {indextype!r} is not csv, csv-zip or parquet")
    return encoded


def catalog_entry(
    *,
    dataset_id: str,
    index: str,
    title: str,
    files: list[IndexedFile],
    filetype: str = "fits",
    description: str | None = None,
    indextype: str = "csv",
    **extra: str,
) -> CatalogEntry:
    """The catalog.json entry describing ``files`` (its start, stop and modification)."""
    if not files:
        raise ValueError(f"dataset {dataset_id!r} has no files to catalog")
    return CatalogEntry(
        id=dataset_id,
        index=index,
        title=title,
        start=format_time(min(item.start for item in files)),
        stop=format_time(max(item.stop for item in files)),
        modification=format_time(datetime.now(UTC)),
        indextype=indextype,
        filetype=filetype,
        description=description,
        multiyear=any(item.start.year != item.stop.year for item in files) or None,
        **extra,
    )


def catalog_json(catalog: BucketCatalog) -> str:
    return json.dumps(catalog.model_dump(mode="json", exclude_none=True), indent=2) + "\n"


def info_json(info: DatasetInfo) -> str:
    return json.dumps(info.model_dump(mode="json", exclude_none=True), indent=2) + "\n"


def write_dataset(
    fs,
    bucket_url: str,
    entry: CatalogEntry,
    files: list[IndexedFile],
    info: DatasetInfo | None = None,
    *,
    bucket_name: str | None = None,
    contact: str = "unknown",
) -> list[str]:
    """Write a dataset's indices (and info file), then add or replace its catalog.json entry.

    catalog.json is written last, so a reader never sees an entry whose indices are not
    there yet. Other datasets' entries are kept as they were. Returns the keys written.
    """
    bucket_url = bucket_url.rstrip("/") + "/"
    extra_names = tuple(p.name for p in info.parameters) if info else ()
    written = []
    for name, data in encode_indices(entry.id, files, entry.indextype, extra_names).items():
        fs.pipe_file(entry.index + name, data)
        written.append(entry.index + name)
    if info is not None:
        fs.pipe_file(entry.index + info_name(entry.id), info_json(info).encode())
        written.append(entry.index + info_name(entry.id))
    _remove_stale_indices(fs, entry, {key.rsplit("/", 1)[1] for key in written})
    key = bucket_url + "catalog.json"
    if fs.exists(key):
        catalog = BucketCatalog.model_validate(json.loads(fs.cat_file(key)))
        catalog.catalog = [e for e in catalog.catalog if e.id != entry.id]
    else:
        catalog = BucketCatalog(endpoint=bucket_url, name=bucket_name or bucket_url[5:-1], contact=contact)
    catalog.catalog.append(entry)
    catalog.catalog.sort(key=lambda e: e.id)
    fs.pipe_file(key, catalog_json(catalog).encode())
    written.append(key)
    return written


def _remove_stale_indices(fs, entry: CatalogEntry, current: set[str]) -> None:
    """Index files of an earlier build (other years or index type) would be read as current."""
    stale = re.compile(
        rf"^{re.escape(entry.id)}_\d{{4}}\.(csv|csv\.zip|parquet)$|^{re.escape(info_name(entry.id))}$"
    )
    try:
        names = [path.rsplit("/", 1)[1] for path in fs.ls(entry.index, detail=False)]
    except FileNotFoundError:
        return
    for name in names:
        if stale.match(name) and name not in current:
            fs.rm_file(entry.index + name)
