"""Read a bucket's CloudCatalog over any fsspec filesystem (S3 first of all).

Only the per-year index files a query needs are fetched. Rows come back as a pandas
DataFrame with ``start``/``stop`` as UTC timestamps and ``datakey`` as full ``s3://``
URLs, ready for ``fsspec.open`` or a Dask map.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import fsspec
import pandas as pd

from .spec import INDEX_COLUMNS, BucketCatalog, CatalogEntry, parse_time


class CatalogError(Exception):
    """A catalog or index that cannot be read, naming the dataset, file and row."""


class CloudCatalog:
    """The catalog of one bucket, e.g. ``CloudCatalog("s3://helio-sample")``.

    ``storage_options`` go to fsspec; with none, the platform's environment decides
    (on Parhelion, the default archive's endpoint and keys).
    """

    def __init__(self, url: str, **storage_options: Any):
        self.url = url.rstrip("/") + "/"
        self.storage_options = storage_options
        self.fs, _ = fsspec.core.url_to_fs(self.url, **storage_options)
        self._catalog: BucketCatalog | None = None

    @property
    def catalog(self) -> BucketCatalog:
        if self._catalog is None:
            key = self.url + "catalog.json"
            try:
                raw = self.fs.cat_file(key)
            except FileNotFoundError:
                raise CatalogError(f"{key}: no catalog.json at the bucket root") from None
            try:
                self._catalog = BucketCatalog.model_validate(json.loads(raw))
            except ValueError as exc:
                raise CatalogError(f"{key}: not a valid CloudCatalog: {exc}") from None
        return self._catalog

    def datasets(self) -> pd.DataFrame:
        """One row per dataset: id, title, start, stop, filetype, description."""
        rows = [
            {
                "id": entry.id,
                "title": entry.title,
                "start": pd.Timestamp(entry.start_time, tz="UTC"),
                "stop": pd.Timestamp(entry.stop_time, tz="UTC"),
                "filetype": entry.filetype,
                "description": entry.description or "",
            }
            for entry in self.catalog.catalog
        ]
        return pd.DataFrame(rows, columns=["id", "title", "start", "stop", "filetype", "description"])

    def entry(self, dataset_id: str) -> CatalogEntry:
        try:
            return self.catalog.entry(dataset_id)
        except KeyError as exc:
            raise CatalogError(exc.args[0]) from None

    def query(
        self,
        dataset_id: str,
        start: str | datetime | None = None,
        stop: str | datetime | None = None,
    ) -> pd.DataFrame:
        """Files of ``dataset_id`` that overlap [start, stop), in time order."""
        entry = self.entry(dataset_id)
        begin = _as_time(start) if start is not None else entry.start_time
        end = _as_time(stop) if stop is not None else entry.stop_time
        if end < begin:
            raise CatalogError(f"{dataset_id}: stop {end} is before start {begin}")
        first_year = max(begin.year, entry.start_time.year)
        last_year = min(end.year, entry.stop_time.year)
        frames = [self._read_index(entry, year) for year in range(first_year, last_year + 1)]
        frames = [frame for frame in frames if frame is not None and len(frame)]
        if not frames:
            return pd.DataFrame(columns=list(INDEX_COLUMNS))
        files = pd.concat(frames, ignore_index=True)
        lo = pd.Timestamp(begin, tz="UTC")
        hi = pd.Timestamp(end, tz="UTC")
        overlapping = (files["stop"] >= lo) & (files["start"] < hi)
        return files[overlapping].sort_values("start").reset_index(drop=True)

    def _read_index(self, entry: CatalogEntry, year: int) -> pd.DataFrame | None:
        key = entry.index_key(year)
        try:
            raw = self.fs.cat_file(key)
        except FileNotFoundError:
            return None  # a year with no files has no index file
        if entry.indextype == "parquet":
            frame = pd.read_parquet(io.BytesIO(raw))
        else:
            frame = pd.read_csv(io.BytesIO(raw), compression="zip" if entry.indextype == "csv-zip" else None)
        return _normalise(frame, f"{entry.id} index {key}")


def _as_time(value: str | datetime) -> datetime:
    """A naive UTC datetime from a datetime (aware ones converted) or a time string."""
    if isinstance(value, str):
        try:
            return parse_time(value if value.endswith("Z") else value + "Z")
        except ValueError:
            pass
    moment = pd.Timestamp(value)
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    return moment.to_pydatetime()


def _normalise(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check the required columns and parse times, naming the first bad row."""
    columns = [str(column).lstrip("#").strip() for column in frame.columns]
    frame.columns = columns
    if tuple(columns[:4]) != INDEX_COLUMNS:
        raise CatalogError(
            f"{where}: first columns must be {', '.join(INDEX_COLUMNS)}, got {', '.join(columns[:4])}"
        )
    for column in ("start", "stop"):
        parsed = pd.to_datetime(frame[column], utc=True, errors="coerce", format="ISO8601")
        bad = parsed.isna()
        if bad.any():
            row = int(bad.idxmax())
            raise CatalogError(f"{where}: row {row + 1}: {column} {frame[column].iloc[row]!r} is not a time")
        frame[column] = parsed
    sizes = pd.to_numeric(frame["filesize"], errors="coerce")
    if sizes.isna().any():
        row = int(sizes.isna().idxmax())
        raise CatalogError(f"{where}: row {row + 1}: filesize {frame['filesize'].iloc[row]!r}")
    frame["filesize"] = sizes.astype("int64")
    return frame
