"""Write a CloudCatalog: per-year index files and the bucket's catalog.json.

The writer works on any fsspec filesystem; the local platform uses it on the folder
that rclone serves as a bucket, so seeding an archive is plain file writes.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from .spec import INDEX_COLUMNS, BucketCatalog, CatalogEntry, format_time


@dataclass(frozen=True)
class IndexedFile:
    """One row of an index: the file's time span, full s3:// key and size in bytes."""

    start: datetime
    stop: datetime
    datakey: str
    filesize: int


def index_files(files: Iterable[IndexedFile]) -> dict[int, str]:
    """CSV text per year (name each with ``index_name``), rows in time order, with the
    optional '#' header line.

    A file spanning years is indexed under its start year (the spec's ``multiyear``).
    """
    by_year: dict[int, list[IndexedFile]] = defaultdict(list)
    for item in files:
        by_year[item.start.year].append(item)
    texts: dict[int, str] = {}
    for year, rows in sorted(by_year.items()):
        out = io.StringIO()
        out.write("# " + ",".join(INDEX_COLUMNS) + "\n")
        writer = csv.writer(out, lineterminator="\n")
        for row in sorted(rows, key=lambda item: (item.start, item.datakey)):
            writer.writerow([format_time(row.start), format_time(row.stop), row.datakey, row.filesize])
        texts[year] = out.getvalue()
    return texts


def catalog_entry(
    *,
    dataset_id: str,
    index: str,
    title: str,
    files: list[IndexedFile],
    filetype: str = "fits",
    description: str | None = None,
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
        indextype="csv",
        filetype=filetype,
        description=description,
        multiyear=any(item.start.year != item.stop.year for item in files) or None,
        **extra,
    )


def catalog_json(catalog: BucketCatalog) -> str:
    return json.dumps(catalog.model_dump(mode="json", exclude_none=True), indent=2) + "\n"
