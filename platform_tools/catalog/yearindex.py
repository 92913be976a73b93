"""Parsed year indices kept between queries, re-read only when the object changed.

A year of AIA is 130k rows (16 MB of CSV): GETting and parsing it for every query costs
far more than the query. A ``CloudCatalog`` therefore keeps each (dataset, year) index
parsed and sorted, with the object's stamp (its ETag, or modification time, and size)
taken BEFORE the GET. Each query asks for the stamp again (a HEAD, a few milliseconds)
and re-reads the index only when it differs: a changed object is never answered from
memory, and an object changed between the HEAD and the GET is read again next time
(its new stamp differs from the old one kept), never kept as current.

A CSV index is parsed by pyarrow (about 8x faster than pandas' reader) with its spec
types forced; anything that reader will not take as the spec's plain form (truncated
times like ``2024-05-08Z``, ragged rows, ...) falls back to pandas, whose path names the
bad row, so both give the same frame or the same error.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import pandas as pd

#: pandas' default missing-value markers, so string columns read alike by both readers.
NA_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip

#: Rows kept per client (about 120 MB at AIA's keys): beyond it, the least recently used
#: year indices are dropped after the query that read them.
MAX_CACHED_ROWS = 1_000_000


def stamp(info: dict) -> tuple | None:
    """What identifies an object's version in ``fs.info``: ETag or modification time, size.

    None when the filesystem gives neither (then the index is read on every query).
    """
    etag = info.get("ETag") or info.get("etag")
    modified = info.get("LastModified") or info.get("last_modified") or info.get("mtime")
    if not etag and not modified:
        return None
    return (etag, str(modified), info.get("size"), info.get("VersionId"), info.get("ino"))


def fast_csv(raw: bytes, indextype: str) -> pd.DataFrame | None:
    """A csv or csv-zip index read by pyarrow, start/stop as UTC times; None to fall back.

    Columns keep the names of the header (``# start`` too); extra columns stay strings
    (their declared types are applied later, as for pandas' read). Leading spaces of
    string cells are dropped, as pandas' ``skipinitialspace`` does.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    try:
        if indextype == "csv-zip":
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                members = archive.namelist()
                if len(members) != 1:
                    return None
                raw = archive.read(members[0])
        if b', "' in raw:  # a quoted cell after a space: pandas reads it unquoted, pyarrow not
            return None
        names = next(csv.reader([raw[: raw.find(b"\n")].decode("utf-8").rstrip("\r")]))
        if len(names) < 4 or len(set(names)) != len(names):
            return None
        when = pa.timestamp("us", "UTC")
        types = {name: pa.string() for name in names}
        types.update({names[0]: when, names[1]: when, names[3]: pa.int64()})
        table = pcsv.read_csv(
            io.BytesIO(raw),
            convert_options=pcsv.ConvertOptions(
                column_types=types, null_values=NA_VALUES, strings_can_be_null=True
            ),
        )
        spaced = b", " in raw  # else no cell after the first has a leading space to drop
        for position, field in enumerate(table.schema):
            if spaced and pa.types.is_string(field.type):
                table = table.set_column(position, field, pc.utf8_ltrim(table.column(position), " "))
        return table.to_pandas()
    except (pa.ArrowException, UnicodeDecodeError, ValueError, zipfile.BadZipFile, StopIteration):
        return None


@dataclass(frozen=True)
class YearIndex:
    """One index file, parsed and sorted by start, with the stamp it was read under."""

    stamp: tuple | None
    frame: pd.DataFrame
    longest: pd.Timedelta  # the longest file: how far before a range an overlapping one can start

    @classmethod
    def of(cls, stamp_: tuple | None, frame: pd.DataFrame) -> YearIndex:
        if not frame["start"].is_monotonic_increasing:
            frame = frame.sort_values("start", kind="stable").reset_index(drop=True)
        longest = (frame["stop"] - frame["start"]).max() if len(frame) else pd.Timedelta(0)
        return cls(stamp_, frame, longest)

    def overlapping(self, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
        """Rows with stop >= lo and start < hi, by binary search on the sorted starts."""
        starts = self.frame["start"]
        first = int(starts.searchsorted(lo - self.longest, side="left"))
        last = int(starts.searchsorted(hi, side="left"))
        part = self.frame.iloc[first:last]
        return part[part["stop"] >= lo]


class IndexCache:
    """Year indices by key, least recently used dropped beyond ``max_rows`` rows."""

    def __init__(self, max_rows: int = MAX_CACHED_ROWS):
        self.max_rows = max_rows
        self._indices: OrderedDict[str, YearIndex] = OrderedDict()

    def current(self, key: str, stamp_: tuple | None) -> YearIndex | None:
        """The kept index of ``key`` if it was read under this very stamp."""
        index = self._indices.get(key)
        if index is None or stamp_ is None or index.stamp != stamp_:
            return None
        self._indices.move_to_end(key)
        return index

    def keep(self, key: str, index: YearIndex) -> None:
        self._indices[key] = index
        self._indices.move_to_end(key)
        while len(self._indices) > 1 and sum(len(i.frame) for i in self._indices.values()) > self.max_rows:
            self._indices.popitem(last=False)

    def forget(self, key: str) -> None:
        self._indices.pop(key, None)
