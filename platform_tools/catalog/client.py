"""Read CloudCatalogs over any fsspec filesystem (S3 first of all).

Only the per-year index files a query needs are fetched, all at once (s3fs fetches a
list of keys concurrently), and each is kept parsed for the next query, re-read only when
its object changed (see yearindex). Rows come back as a pandas DataFrame with ``start``/``stop``
as UTC timestamps, ``datakey`` as full ``s3://`` URLs ready for ``fsspec.open`` or
``platform_tools.burst``, ``filesize`` in bytes, and the extra columns the dataset's
``<id>.json`` declares, typed.
"""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime
from typing import Any, TypeVar

import fsspec
import fsspec.asyn
import pandas as pd
from pydantic import BaseModel

from platform_tools.catalog.spec import (
    INDEX_COLUMNS,
    BucketCatalog,
    CatalogEntry,
    DatasetInfo,
    Registry,
    describe,
    info_name,
    parse_time,
)
from platform_tools.catalog.yearindex import IndexCache, YearIndex, fast_csv, stamp

M = TypeVar("M", bound=BaseModel)


class CatalogError(Exception):
    """A catalog or index that cannot be read, naming the dataset, file and row."""


class NoFilesError(CatalogError):
    """A query that matched no files (a time range outside the data, or a gap)."""


def _fetch(fs, keys: list[str], what: str) -> dict[str, bytes | None]:
    """{key: bytes, or None where there is no such object}; access errors are explained."""
    if len(keys) == 1:  # fsspec's cat of one path returns bare bytes and raises: keep one shape
        try:
            found = {keys[0]: fs.cat_file(keys[0])}
        except Exception as exc:  # s3fs raises several kinds; sorted out below
            found = {keys[0]: exc}
    else:
        found = fs.cat(keys, on_error="return") if keys else {}
    answers: dict[str, bytes | None] = {}
    for key in keys:
        value = found.get(key, found.get(key.split("://", 1)[-1]))
        if isinstance(value, FileNotFoundError) or value is None:
            answers[key] = None
        elif isinstance(value, PermissionError):
            raise CatalogError(
                f"{key}: access denied reading {what}: the bucket needs credentials, or anonymous "
                "access for a public bucket (anon=True)"
            )
        elif isinstance(value, Exception):
            raise CatalogError(f"{key}: could not read {what}: {value}")
        else:
            answers[key] = value
    return answers


def _load(fs, key: str, model: type[M], what: str, missing: str | None) -> M | None:
    """A JSON document as ``model``; None if absent and ``missing`` is None, else an error."""
    raw = _fetch(fs, [key], f"the {what}")[key]
    if raw is None:
        if missing is None:
            return None
        raise CatalogError(f"{key}: {missing}")
    try:
        return model.model_validate(json.loads(raw))
    except ValueError as exc:
        raise CatalogError(f"{key}: not a valid {what}: {describe(exc)}") from None


class CatalogRegistry:
    """The global registry of buckets with CloudCatalogs, e.g. HelioCloud's.

    ``CatalogRegistry(url)`` reads a registry JSON from s3://, https:// or a local path.
    """

    def __init__(self, url: str, **storage_options: Any):
        self.url = url
        self.storage_options = storage_options
        fs, _ = fsspec.core.url_to_fs(url, **storage_options)
        self.registry = _load(fs, url, Registry, "CloudCatalog registry", "no registry there")

    def buckets(self) -> pd.DataFrame:
        rows = [entry.model_dump() for entry in self.registry.registry]
        return pd.DataFrame(rows, columns=["name", "endpoint", "provider", "region"])

    def catalog(self, name: str, **storage_options: Any) -> CloudCatalog:
        """The CloudCatalog of a registered bucket, by name or endpoint."""
        try:
            entry = self.registry.entry(name)
        except KeyError as exc:
            raise CatalogError(f"{self.url}: {exc.args[0]}") from None
        return CloudCatalog(entry.endpoint, **storage_options)


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
        self._infos: dict[str, DatasetInfo | None] = {}
        self._indices = IndexCache()

    @property
    def catalog(self) -> BucketCatalog:
        if self._catalog is None:
            key = self.url + "catalog.json"
            self._catalog = _load(
                self.fs, key, BucketCatalog, "CloudCatalog", "no catalog.json at the bucket root"
            )
            if self._catalog.status.code != 1200:
                raise CatalogError(
                    f"{key}: the archive says it is unavailable: {self._catalog.status.message}"
                )
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
            raise CatalogError(f"{self.url}catalog.json: {exc.args[0]}") from None

    def info(self, dataset_id: str) -> DatasetInfo | None:
        """The dataset's ``<id>.json`` (its extra columns), or None if it has none."""
        if dataset_id not in self._infos:
            entry = self.entry(dataset_id)
            key = entry.index + info_name(entry.id)
            self._infos[dataset_id] = _load(self.fs, key, DatasetInfo, f"info file for {dataset_id}", None)
        return self._infos[dataset_id]

    def query(
        self,
        dataset_id: str,
        start: str | datetime | None = None,
        stop: str | datetime | None = None,
    ) -> pd.DataFrame:
        """Files of ``dataset_id`` that overlap [start, stop), in time order.

        Raises NoFilesError when none do, saying what time range the dataset covers.
        """
        entry = self.entry(dataset_id)
        begin = _as_time(start) if start is not None else entry.start_time
        end = _as_time(stop) if stop is not None else entry.stop_time
        if end < begin:
            raise CatalogError(f"{dataset_id}: stop {end} is before start {begin}")
        files = self._files(entry, begin, end)
        if not len(files):
            raise NoFilesError(
                f"{dataset_id}: no files between {begin:%Y-%m-%dT%H:%M:%SZ} and {end:%Y-%m-%dT%H:%M:%SZ} "
                f"(the dataset covers {entry.start} to {entry.stop})"
            )
        return files

    def _files(self, entry: CatalogEntry, begin: datetime, end: datetime) -> pd.DataFrame:
        first_year = max(begin.year, entry.start_time.year)
        last_year = min(end.year, entry.stop_time.year)
        keys = [entry.index_key(year) for year in range(first_year, last_year + 1)]
        lo = pd.Timestamp(begin, tz="UTC")
        hi = pd.Timestamp(end, tz="UTC")
        frames = [index.overlapping(lo, hi) for index in self._year_indices(entry, keys)]
        frames = [frame for frame in frames if len(frame)]
        if not frames:
            return pd.DataFrame(columns=list(INDEX_COLUMNS))
        files = pd.concat(frames, ignore_index=True)
        if not files["start"].is_monotonic_increasing:  # an index holding rows of other years
            files = files.sort_values("start", kind="stable").reset_index(drop=True)
        return files

    def _year_indices(self, entry: CatalogEntry, keys: list[str]) -> list[YearIndex]:
        """The parsed index of each year that has one, read again only if its object changed.

        Stamps are taken before the GET, so an index rewritten in between is re-read on
        the next query instead of being kept under the stamp of its older version.
        """
        what = f"the index of {entry.id}"
        stamps = _stamps(self.fs, keys, what)
        found = {key: self._indices.current(key, stamps[key]) for key in keys if stamps[key] is not False}
        stale = [key for key, index in found.items() if index is None]
        info = self.info(entry.id) if stale else None
        for key, raw in _fetch(self.fs, stale, what).items():
            if raw is None:  # deleted since its stamp was taken
                found.pop(key)
                continue
            found[key] = YearIndex.of(stamps[key], _parse(raw, entry, key, info))
            if stamps[key] is not None:
                self._indices.keep(key, found[key])
        for key in keys:
            if stamps[key] is False:  # a year with no files has no index file
                self._indices.forget(key)
        return [found[key] for key in keys if key in found]


def _stamps(fs, keys: list[str], what: str) -> dict[str, tuple | None | bool]:
    """Each object's stamp (see yearindex.stamp), False where there is no such object.

    On an async filesystem (s3fs) the HEADs go out together, as the GETs do: a query
    over many years waits for one round trip, not one per year.
    """
    for key in keys:
        fs.invalidate_cache(key)  # a listing cached by fsspec would hide a change
    if getattr(fs, "async_impl", False) and len(keys) > 1:
        infos = fsspec.asyn.sync(fs.loop, _gather_infos, fs, keys)
    else:
        infos = []
        for key in keys:
            try:
                infos.append(fs.info(key))
            except Exception as exc:  # sorted out below, as for the async path
                infos.append(exc)
    stamps: dict[str, tuple | None | bool] = {}
    for key, info in zip(keys, infos, strict=True):
        if isinstance(info, FileNotFoundError):
            stamps[key] = False
        elif isinstance(info, PermissionError):
            raise CatalogError(
                f"{key}: access denied reading {what}: the bucket needs credentials, or anonymous "
                "access for a public bucket (anon=True)"
            )
        elif isinstance(info, Exception):  # s3fs and http raise several kinds
            raise CatalogError(f"{key}: could not read {what}: {info}")
        else:
            stamps[key] = stamp(info)
    return stamps


async def _gather_infos(fs, keys: list[str]) -> list:
    return await asyncio.gather(*(fs._info(key) for key in keys), return_exceptions=True)


def _parse(raw: bytes, entry: CatalogEntry, key: str, info: DatasetInfo | None) -> pd.DataFrame:
    """An index file checked and typed: by pyarrow where it reads it (see yearindex.fast_csv),
    else, or if that frame fails a check, by pandas, whose frame and errors are the reference.
    """
    where = f"{entry.id} index {key}"
    fast = fast_csv(raw, entry.indextype) if entry.indextype != "parquet" else None
    if fast is not None:
        try:
            return _normalise(fast, info, where)
        except CatalogError:
            pass  # pandas' reading below names the problem (or reads what pyarrow did not)
    return _normalise(_decode(raw, entry, key), info, where)


def _decode(raw: bytes, entry: CatalogEntry, key: str) -> pd.DataFrame:
    """The index as read, every CSV cell a string (``catalog validate`` checks their text)."""
    try:
        if entry.indextype == "parquet":
            return pd.read_parquet(io.BytesIO(raw))
        compression = "zip" if entry.indextype == "csv-zip" else None
        return pd.read_csv(io.BytesIO(raw), compression=compression, dtype=str, skipinitialspace=True)
    except Exception as exc:  # pandas and pyarrow raise many kinds for a broken file
        raise CatalogError(f"{entry.id} index {key}: not a readable {entry.indextype} file: {exc}") from None


def _as_time(value: str | datetime) -> datetime:
    """A naive UTC datetime from a datetime (aware ones converted) or a time string."""
    if isinstance(value, str):
        try:
            return parse_time(value if value.endswith("Z") else value + "Z")
        except ValueError:
            pass
    try:
        moment = pd.Timestamp(value)
    except ValueError:
        raise CatalogError(f"{value!r} is not a time (use e.g. 2024-05-08T06:00Z)") from None
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    return moment.to_pydatetime()


_CASTS = {
    "integer": lambda s: pd.to_numeric(s, errors="coerce").astype("Int64"),
    "double": lambda s: pd.to_numeric(s, errors="coerce"),
    "isotime": lambda s: pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601"),
    "boolean": lambda s: s.map(
        {"true": True, "false": False, "True": True, "False": False, True: True, False: False}
    ),
}


def _bad_row(mask: pd.Series) -> int:
    return int(mask.to_numpy().argmax()) + 1


def _normalise(frame: pd.DataFrame, info: DatasetInfo | None, where: str) -> pd.DataFrame:
    """Check the columns and every row, parse times and types, naming the first bad row."""
    columns = [str(column).lstrip("#").strip() for column in frame.columns]
    frame.columns = columns
    if tuple(columns[:4]) != INDEX_COLUMNS:
        raise CatalogError(
            f"{where}: first columns must be {', '.join(INDEX_COLUMNS)}, got {', '.join(columns[:4])}"
        )
    if info is not None:
        declared = [p.name for p in info.parameters]
        if columns[4:] != declared:
            raise CatalogError(
                f"{where}: extra columns {columns[4:]} differ from those the info file declares {declared}"
            )
    for column in ("start", "stop"):
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):  # read as times already (pyarrow)
            parsed = frame[column].dt.tz_convert("UTC")
        else:
            parsed = pd.to_datetime(frame[column], utc=True, errors="coerce", format="ISO8601")
        bad = parsed.isna()
        if bad.any():
            row = _bad_row(bad)
            raise CatalogError(f"{where}: row {row}: {column} {frame[column].iloc[row - 1]!r} is not a time")
        frame[column] = parsed
    backwards = frame["stop"] < frame["start"]
    if backwards.any():
        raise CatalogError(f"{where}: row {_bad_row(backwards)}: stop is before start")
    keys = frame["datakey"].astype(str)
    not_urls = ~keys.str.match(r"^(s3|https?)://[^/]+/.+")
    if not_urls.any():
        row = _bad_row(not_urls)
        raise CatalogError(
            f"{where}: row {row}: datakey {keys.iloc[row - 1]!r} is not a full s3:// or https:// URL"
        )
    sizes = pd.to_numeric(frame["filesize"], errors="coerce")
    if sizes.isna().any() or (sizes < 0).any():
        row = _bad_row(sizes.isna() | (sizes < 0))
        raise CatalogError(
            f"{where}: row {row}: filesize {frame['filesize'].iloc[row - 1]!r} is not a size in bytes"
        )
    frame["filesize"] = sizes.astype("int64")
    for parameter in info.parameters if info else []:
        cast = _CASTS.get(parameter.type)
        if cast is not None:
            values = cast(frame[parameter.name])
            bad = values.isna() & frame[parameter.name].notna()
            if bad.any():
                row = _bad_row(bad)
                raise CatalogError(
                    f"{where}: row {row}: {parameter.name} {frame[parameter.name].iloc[row - 1]!r} "
                    f"is not {parameter.type}"
                )
            frame[parameter.name] = values
    return frame
