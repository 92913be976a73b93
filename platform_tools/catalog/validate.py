"""Check a bucket's CloudCatalog against the spec: what `parhelion catalog validate` does.

Unlike reading, which stops at the first problem, validation reports every problem it
finds, each as ``where: message`` (catalog.json fields by path, index rows by number),
so an archive maintainer can fix them in one pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pandas as pd
from pydantic import ValidationError

from platform_tools.catalog.client import _decode
from platform_tools.catalog.spec import (
    INDEX_COLUMNS,
    TIME_PATTERN,
    BucketCatalog,
    CatalogEntry,
    DatasetInfo,
    info_name,
)

MAX_ROWS_REPORTED = 10  # per check and file: enough to see the pattern
_YEAR_FILE = re.compile(r"^(?P<id>[A-Za-z0-9_-]+)_(?P<year>\d{4})\.(?P<ext>csv|csv\.zip|parquet)$")
_EXTENSION = {"csv": "csv", "csv-zip": "csv.zip", "parquet": "parquet"}


def _pydantic_problems(where: str, error: ValidationError) -> Iterator[str]:
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        yield f"{where}: {path}: {item['msg']}"


def validate_bucket(fs, bucket_url: str, dataset_ids: list[str] | None = None) -> list[str]:
    """Every problem of the catalog at ``bucket_url`` (empty when it is valid)."""
    bucket_url = bucket_url.rstrip("/") + "/"
    key = bucket_url + "catalog.json"
    try:
        raw = fs.cat_file(key)
    except FileNotFoundError:
        return [f"{key}: missing (a catalog bucket has catalog.json at its root)"]
    except PermissionError:
        return [f"{key}: access denied (credentials, or --anon for a public bucket)"]
    try:
        document = json.loads(raw)
    except ValueError as exc:
        return [f"{key}: not JSON: {exc}"]
    try:
        catalog = BucketCatalog.model_validate(document)
    except ValidationError as exc:
        return list(_pydantic_problems(key, exc))
    problems = []
    ids = [e.id for e in catalog.catalog]
    problems += [
        f"{key}: catalog: dataset id {i!r} appears more than once"
        for i in sorted({i for i in ids if ids.count(i) > 1})
    ]
    for entry in catalog.catalog:
        if dataset_ids and entry.id not in dataset_ids:
            continue
        problems += _entry_problems(fs, key, entry)
    unknown = sorted(set(dataset_ids or ()) - set(ids))
    problems += [f"{key}: no dataset {i!r}" for i in unknown]
    return problems


def _entry_problems(fs, key: str, entry: CatalogEntry) -> list[str]:
    where = f"{key}: {entry.id}"
    problems = []
    if entry.stop_time < entry.start_time:
        problems.append(f"{where}: stop {entry.stop} is before start {entry.start}")
    info = None
    try:
        info_raw = fs.cat_file(entry.index + info_name(entry.id))
        info = DatasetInfo.model_validate(json.loads(info_raw))
    except FileNotFoundError:
        pass
    except ValidationError as exc:
        problems += _pydantic_problems(entry.index + info_name(entry.id), exc)
    except ValueError as exc:
        problems.append(f"{entry.index + info_name(entry.id)}: not JSON: {exc}")
    try:
        names = [path.rsplit("/", 1)[-1] for path in fs.ls(entry.index, detail=False, refresh=True)]
    except FileNotFoundError:
        names = []
    years = []
    for name in names:
        match = _YEAR_FILE.match(name)
        if not match or match["id"] != entry.id:
            continue
        if match["ext"] != _EXTENSION[entry.indextype]:
            problems.append(
                f"{entry.index}{name}: a {match['ext']} index, but the entry says indextype {entry.indextype}"
            )
            continue
        years.append(int(match["year"]))
    if not years:
        problems.append(
            f"{where}: no index files {entry.id}_YYYY.{_EXTENSION[entry.indextype]} in {entry.index}"
        )
    expected = set(range(entry.start_time.year, entry.stop_time.year + 1))
    problems += [
        f"{where}: index for {y} is outside the entry's {entry.start} to {entry.stop}"
        for y in sorted(set(years) - expected)
    ]
    formats: set[str] = set()
    for year in sorted(years):
        problems += _index_problems(fs, entry, year, info, formats)
    if len(formats) > 1:
        problems.append(
            f"{where}: times use {len(formats)} formats ({', '.join(sorted(formats))}); "
            "the spec wants one per dataset"
        )
    return problems


def _shape(text: str) -> str:
    return re.sub(r"\d", "d", text)


def _index_problems(
    fs, entry: CatalogEntry, year: int, info: DatasetInfo | None, formats: set[str]
) -> list[str]:
    key = entry.index_key(year)
    try:
        frame = _decode(fs.cat_file(key), entry, key)
    except Exception as exc:  # CatalogError from _decode, or the read itself
        return [f"{key}: {exc}"]
    where = key
    columns = [str(c).lstrip("#").strip() for c in frame.columns]
    frame.columns = columns
    if tuple(columns[:4]) != INDEX_COLUMNS:
        return [f"{where}: first columns must be {', '.join(INDEX_COLUMNS)}, got {', '.join(columns[:4])}"]
    declared = [p.name for p in info.parameters] if info else []
    problems = []
    if columns[4:] != declared:
        problems.append(
            f"{where}: extra columns {columns[4:]} are not those {entry.id}.json declares {declared}"
        )

    def rows(mask: pd.Series, message: str) -> None:
        for row in list(mask[mask].index[:MAX_ROWS_REPORTED]):
            problems.append(
                f"{where}: row {row + 1}: {message.format(**frame.loc[row].astype(str).to_dict())}"
            )
        if int(mask.sum()) > MAX_ROWS_REPORTED:
            problems.append(f"{where}: ... and {int(mask.sum()) - MAX_ROWS_REPORTED} more rows like that")

    for column in ("start", "stop"):
        text = frame[column].astype(str)
        rows(~text.str.match(TIME_PATTERN.pattern), f"{column} {{{column}}} is not restricted ISO 8601 UTC")
        formats.update(_shape(t) for t in text[text.str.match(TIME_PATTERN.pattern)].unique()[:50])
    start = pd.to_datetime(frame["start"], utc=True, errors="coerce", format="ISO8601")
    stop = pd.to_datetime(frame["stop"], utc=True, errors="coerce", format="ISO8601")
    rows(stop < start, "stop {stop} is before start {start}")
    rows(start.dt.year != year, f"start {{start}} is not in {year}, the year of this index file")
    rows(start < start.shift(1), "rows are not in time order (start {start} is before the row above)")
    rows(
        ~frame["datakey"].astype(str).str.match(r"^(s3|https?)://[^/]+/.+"),
        "datakey {datakey} is not a full s3:// URL",
    )
    sizes = pd.to_numeric(frame["filesize"], errors="coerce")
    rows(sizes.isna() | (sizes < 0), "filesize {filesize} is not a size in bytes")
    rows(frame["datakey"].duplicated(), "datakey {datakey} is listed twice")
    return problems
