"""Where ``burst_map`` keeps its results: in memory for a small job, or streamed to parquet.

In memory, every finished batch's values stay on the client until the run ends and the
results frame is built once. With ``output="run.parquet"`` (a local folder or any fsspec
URL) finished batches' rows (the catalog's columns and the function's values) are
gathered into parts of about ``PART_ROWS`` rows, each written as ``part-<n>.parquet`` when
full (and the last at the run's end), then dropped: the client holds at most one part's
rows, the counters and the failures, however many files the job has. One part per batch
would cost the client a parquet write every few dozen files (a third of a millisecond of
its CPU per file at 130k, taken from the workers on a small machine).
``BurstResult.results`` reads the parts back when first asked, in catalog order (each
part keeps the rows' catalog positions as its index), equal to what the in-memory run
returns. The folder is also a parquet dataset of its own: ``pd.read_parquet(output)``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd


def value_columns(values: list) -> pd.DataFrame:
    """The function's values as columns: a dict's keys when every value is a dict, else ``value``."""
    if values and all(isinstance(v, dict) for v in values):
        return pd.DataFrame(values)
    column = np.empty(len(values), dtype=object)
    column[:] = values  # arrays stay whole objects, one per row
    return pd.DataFrame({"value": pd.Series(column).infer_objects()})


def result_rows(frame: pd.DataFrame, rows: np.ndarray, values: list) -> pd.DataFrame:
    """Catalog rows ``rows`` (positions) with their values, indexed by those positions."""
    columns = value_columns(values)
    columns.index = rows
    catalog = frame.iloc[rows]
    catalog.index = rows
    columns = columns.rename(columns={c: f"{c}_value" for c in columns if c in catalog})
    return pd.concat([catalog, columns], axis=1)


def in_catalog_order(parts: list[pd.DataFrame], frame: pd.DataFrame) -> pd.DataFrame:
    if not parts:
        return frame.iloc[:0].reset_index(drop=True)
    return pd.concat(parts).sort_index(kind="stable").reset_index(drop=True)


class MemoryResults:
    """Values held on the client until the run ends (the default; fine for thousands of files)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.rows: list[np.ndarray] = []
        self.values: list = []

    def add(self, rows: np.ndarray, values: list) -> None:
        self.rows.append(rows)
        self.values.extend(values)

    def close(self) -> None:
        return None

    def results(self) -> pd.DataFrame:
        if not self.rows:
            return self.frame.iloc[:0].reset_index(drop=True)
        return in_catalog_order([result_rows(self.frame, np.concatenate(self.rows), self.values)], self.frame)


PART_ROWS = 10_000


class ParquetResults:
    """Finished batches' rows written in parts of about ``PART_ROWS`` rows, little held."""

    def __init__(self, frame: pd.DataFrame, output: str | os.PathLike):
        import fsspec

        self.frame = frame
        self.url = os.fspath(output)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        if self.fs.exists(self.root) and self.fs.ls(self.root):
            raise ValueError(f"output {self.url} already has files: give a new or empty folder")
        self.fs.makedirs(self.root, exist_ok=True)
        self.buffer = MemoryResults(frame)
        self.buffered = 0
        self.parts = 0

    def add(self, rows: np.ndarray, values: list) -> None:
        self.buffer.add(rows, values)
        self.buffered += len(rows)
        if self.buffered >= PART_ROWS or not self.parts:  # the first at once: values parquet
            self.flush()  # cannot store stop the run at its first batch, not at its end

    def flush(self) -> None:
        """Write the rows gathered so far as the next part."""
        if not self.buffered:
            return
        buffer = self.buffer
        part = result_rows(self.frame, np.concatenate(buffer.rows), buffer.values)
        self.buffer, self.buffered = MemoryResults(self.frame), 0
        try:
            with self.fs.open(f"{self.root}/part-{self.parts:05d}.parquet", "wb") as out:
                part.to_parquet(out, index=True)
        except Exception as exc:  # pyarrow raises many kinds for values it cannot store
            raise ValueError(
                f"output={self.url!r}: the function's values cannot be stored in parquet "
                f"({type(exc).__name__}: {exc}); return numbers, strings, 1-D arrays or dicts of them, "
                "or run without output="
            ) from None
        self.parts += 1

    def close(self) -> None:
        """The last part, then one schema for all parts: a value column that is integer in one
        part and float (or null) in another would make ``pd.read_parquet(output)`` refuse the
        folder, so such parts are rewritten with the types promoted as pandas would."""
        self.flush()
        import pyarrow as pa
        import pyarrow.parquet as pq

        paths = sorted(self.fs.glob(f"{self.root}/part-*.parquet"))
        schemas = {}
        for path in paths:
            with self.fs.open(path, "rb") as part:
                schemas[path] = pq.read_schema(part)
        if len({schema.remove_metadata() for schema in schemas.values()}) <= 1:
            return
        try:
            unified = pa.unify_schemas(list(schemas.values()), promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(
                f"output={self.url!r}: the function returned values of types that cannot share a "
                f"column ({exc}); its parts are readable one by one"
            ) from None
        for path, schema in schemas.items():
            if schema.remove_metadata() != unified.remove_metadata():
                with self.fs.open(path, "rb") as part:
                    table = pq.read_table(part)
                with self.fs.open(path, "wb") as part:
                    pq.write_table(
                        table.cast(unified.remove_metadata()).replace_schema_metadata(schema.metadata), part
                    )

    def results(self) -> pd.DataFrame:
        parts = []
        for path in sorted(self.fs.glob(f"{self.root}/part-*.parquet")):
            with self.fs.open(path, "rb") as part:
                parts.append(pd.read_parquet(part))
        return in_catalog_order(parts, self.frame)


def results_store(frame: pd.DataFrame, output: Any) -> MemoryResults | ParquetResults:
    return MemoryResults(frame) if output is None else ParquetResults(frame, output)
