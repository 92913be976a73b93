"""``burst_map``: a function over thousands of S3 objects on a Dask cluster, with a report.

    from platform_tools.burst import burst_map, burst_cluster

    files = catalog.query("aia_0094", "2024-05-01", "2024-06-01")
    with burst_cluster(8) as cluster:
        run = burst_map(mean_intensity, files, client=cluster.client)
    run.results      # one row per file: the catalog's columns and the function's values
    run.failures     # one row per file that failed after retries, with the reason
    print(run.report)  # files/s, MB/s, per core, dollars

Every input file is either in ``results`` or in ``failures``: none is dropped.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from platform_tools.burst.output import results_store
from platform_tools.burst.plan import batch_bounds, batch_starts
from platform_tools.burst.price import BurstPlan, cluster_cost_per_hour, plan_items, run_inputs
from platform_tools.burst.worker import Reader, outcome_bytes, run_batch

RETRYABLE = {"fetch", "task"}  # transient fetch failures and lost tasks get a second round


@dataclass
class BurstReport:
    files: int
    succeeded: int
    failed: int
    bytes: int
    seconds: float
    workers: int
    threads: int
    tasks: int
    cost_usd: float | None
    plan: BurstPlan | None = None  # the estimate made before the run, shown first
    plan_seconds: float = 0.0  # planning the batches, both rounds
    submit_seconds: float = 0.0  # handing the tasks to the scheduler, both rounds

    @property
    def files_per_second(self) -> float:
        return self.succeeded / self.seconds if self.seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0

    @property
    def files_per_second_per_core(self) -> float:
        return self.files_per_second / self.threads if self.threads else 0.0

    def __str__(self) -> str:
        cost = "unknown (no price for this cluster)" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        first = "" if self.plan is None else f"{self.plan}\n"
        return first + (
            f"{self.succeeded} of {self.files} files in {self.seconds:.1f} s on {self.workers} workers "
            f"({self.threads} threads, {self.tasks} tasks): {self.files_per_second:.1f} files/s, "
            f"{self.mb_per_second:.1f} MB/s, {self.files_per_second_per_core:.2f} files/s per core; "
            f"{self.failed} failed; cost {cost}"
        )


class BurstResult:
    """The run's ``results``, ``failures`` and ``report``.

    With ``burst_map(..., output=...)`` the results are on disk, not in memory:
    ``results`` reads them back when first asked (and keeps them); ``output`` is the
    parquet folder, readable without loading it all (e.g. ``pd.read_parquet(output,
    columns=[...])`` or dask.dataframe).
    """

    def __init__(
        self, results: pd.DataFrame | None, failures: pd.DataFrame, report: BurstReport, store: Any = None
    ):
        self._results = results
        self.failures = failures
        self.report = report
        self._store = store

    @property
    def results(self) -> pd.DataFrame:
        if self._results is None:
            self._results = self._store.results()
            if getattr(self._store, "url", None) is None:
                self._store = None  # in memory: the frame is built once, the batches let go
        return self._results

    @property
    def output(self) -> str | None:
        return getattr(self._store, "url", None)

    def __repr__(self) -> str:
        where = f"results in {self.output}" if self.output else "results in memory"
        return f"BurstResult({where}; {self.report})"

    def to_xarray(self, column: str = "value", dim: str = "start"):
        """Array results (``column``) stacked along ``dim`` (a column, e.g. the time)."""
        import xarray as xr

        results = self.results
        values = np.stack([np.asarray(v) for v in results[column]])
        coords = {dim: results[dim].to_numpy(), "datakey": (dim, results["datakey"].to_numpy())}
        return xr.DataArray(values, dims=[dim, *[f"dim_{i}" for i in range(values.ndim - 1)]], coords=coords)


def file_items(files: pd.DataFrame | list[str]) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """The catalog frame (positions as its index) and its (url, bytes) items (1 each without sizes)."""
    frame = pd.DataFrame({"datakey": list(files)}) if not isinstance(files, pd.DataFrame) else files
    if "datakey" not in frame.columns:
        raise ValueError(
            "files must be a catalog query (a DataFrame with a datakey column) or a list of URLs"
        )
    frame = frame.reset_index(drop=True)
    keys, sizes = _arrays(frame)
    return frame, list(zip(keys.tolist(), sizes.tolist(), strict=True))


def _arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The frame's keys and sizes as arrays: a batch is then a slice, not a list of tuples."""
    keys = frame["datakey"].astype(str).to_numpy(dtype=object)
    if "filesize" not in frame.columns:
        return keys, np.ones(len(frame), np.int64)
    return keys, frame["filesize"].to_numpy(dtype=np.int64)


def burst_map(
    func: Callable,
    files: pd.DataFrame | list[str],
    *,
    client: Any = None,
    reader: Reader = "image",
    storage_options: dict | None = None,
    concurrency: int = 16,
    retries: int = 2,
    tasks_per_thread: int = 3,
    progress: bool | Callable[[int, int], None] = True,
    plan: BurstPlan | None = None,
    accept_cost: bool = False,
    output: str | os.PathLike | None = None,
) -> BurstResult:
    """Apply ``func`` to every file; see the module docstring.

    ``reader`` decides what ``func`` receives: "image" ``(pixels, header)`` of the first
    image HDU; "fits" the HDUList; "bytes" the object's bytes; "lazy" ``(fs, url)`` for
    functions that read only parts of a file (e.g. cutouts). ``storage_options`` default
    to the archive's (``platform_tools.archives``) for the files' bucket. ``progress``:
    a tqdm bar, none (False), or a callable given ``(files done, files)`` as batches end.
    ``output``: a folder (local or fsspec URL) to stream results to as parquet parts
    instead of holding them (``platform_tools.burst.output``), for jobs of 100k files.

    The run is priced first (``burst_plan``; or pass the ``plan`` you made): a pilot on a
    sample of the files measures the rate, and a job whose estimate exceeds what is left of
    the budget is refused with ``BurstBudgetError`` unless ``accept_cost=True``. The pilot's
    files are not run again.
    """
    from distributed import as_completed

    frame, items = file_items(files)
    client, storage_options = run_inputs(client, storage_options, items, concurrency)
    threads = sum(client.nthreads().values())
    workers = len(client.nthreads())
    price = cluster_cost_per_hour(client)
    store = results_store(frame, output)
    if plan is None:
        plan = plan_items(frame, items, func, client, None, reader, storage_options, concurrency, None)
    plan.check(accept_cost)
    if plan.func not in (None, func) or plan.reader not in (None, reader):
        plan = dataclasses.replace(plan, pilot_outcomes=[], pilot_seconds=0.0)  # another function's values
    _stop_if_every_pilot_file_failed(plan.pilot_outcomes)
    del items  # the run works on arrays
    keys, sizes = _arrays(frame)
    run = _Run(len(keys), store, _progress(len(keys), progress))
    task = partial(
        _run_columns, func=func, reader=reader, storage_options=storage_options, concurrency=concurrency
    )
    started = time.perf_counter()
    pending, lost = run.take_pilot(keys, plan.pilot_outcomes), np.arange(0)
    for round_number in (1, 2):  # a second round for transient failures and lost tasks
        if not len(pending) and not len(lost):
            break
        planned = time.perf_counter()
        starts = batch_starts(
            sizes[pending].tolist(),
            threads,
            tasks_per_thread=tasks_per_thread,
            seconds_per_file=plan.core_seconds_per_file,
        )
        rows = [pending[lo:hi] for lo, hi in batch_bounds(starts, len(pending))]
        rows += [np.array([row]) for row in lost]  # one a task: a file that kills workers fails alone
        batches = [keys[r].tolist() for r in rows]
        token = uuid.uuid4().hex[:8]
        names = [f"burst-{token}-{i}" for i in range(len(batches))]
        run.plan_seconds += time.perf_counter() - planned
        submitted = time.perf_counter()
        futures = client.map(task, batches, key=names, retries=retries, pure=False)
        run.submit_seconds += time.perf_counter() - submitted
        run.tasks += len(futures)
        del batches
        number = {name: i for i, name in enumerate(names)}
        try:
            for future in as_completed(futures):
                i = number[future.key]
                run.finish(rows[i], _columns(future), final=round_number == 2)
                future.release()
        except BaseException:
            # An interrupted cell or an error here: without this the futures stay referenced
            # (by the traceback IPython keeps) and the cluster runs, and bills, the whole job.
            client.cancel(futures)
            raise
        pending, lost = run.take_retries()
    run.bar.close()
    store.close()
    seconds = plan.pilot_seconds + time.perf_counter() - started  # the pilot's files count too
    report = BurstReport(
        files=len(keys),
        succeeded=run.succeeded,
        failed=len(run.failed_rows),
        bytes=run.bytes,
        seconds=seconds,
        workers=workers,
        threads=threads,
        tasks=run.tasks,
        cost_usd=None if price is None else price * seconds / 3600,
        plan=plan,
        plan_seconds=run.plan_seconds,
        submit_seconds=run.submit_seconds,
    )
    return BurstResult(None, run.failures(frame), report, store=store)


Columns = tuple[list, list[tuple[int, str, str]], list[int]]  # values, (position, reason, kind), bytes


def _run_columns(urls: list[str], **options: Any) -> Columns:
    """``run_batch`` on the worker, its outcomes sent back as columns: fewer, smaller objects."""
    outcomes = run_batch([(url, 0) for url in urls], **options)
    errors = [(i, o["error"], o["kind"]) for i, o in enumerate(outcomes) if o.get("error")]
    return [o["value"] for o in outcomes], errors, [outcome_bytes(o) for o in outcomes]


def _columns(future: Any) -> Columns | BaseException:
    """The task's columns, or the error of a task that failed (after Dask's retries) or was
    cancelled (e.g. a restarted cluster): its files are then retried like a lost task's."""
    if future.status == "error":
        return future.exception()
    if future.status != "finished":
        return RuntimeError(f"task {future.status}")
    return future.result()


def _stop_if_every_pilot_file_failed(outcomes: list[dict]) -> None:
    """A function that fails on every file of the pilot (a typo, a wrong reader) would fail
    on all the others too, after fetching and decoding them all: say so before the run."""
    failed = [o for o in outcomes if o.get("error")]
    systematic = {"function", "decode", "denied"}  # not "missing": a few absent files say nothing
    if outcomes and len(failed) == len(outcomes) and all(o["kind"] in systematic for o in failed):
        first = failed[0]
        raise RuntimeError(
            f"every one of the pilot's {len(outcomes)} files failed, so the other files were not "
            f"run; e.g. {first['datakey']}: {first['error']} ({first['kind']})"
        )


class _Run:
    """The client's state during a run: a flag and a count per file, the failures, counters.

    Every file ends exactly once: the first final outcome of a file counts, any later one
    (a batch recomputed after its worker was lost) is dropped. Values go straight to the
    results store; only failures are kept here.
    """

    def __init__(self, files: int, store: Any, bar: Any):
        self.store, self.bar = store, bar
        self.done = np.zeros(files, dtype=bool)
        self.attempts = np.zeros(files, dtype=np.int16)
        self.failed_rows: list[int] = []
        self.reasons: list[tuple[str, str]] = []
        self.retry: list[np.ndarray] = []  # transient fetch failures
        self.lost: list[np.ndarray] = []  # files of a task Dask gave up on (e.g. KilledWorker)
        self.succeeded = self.bytes = self.tasks = 0
        self.plan_seconds = self.submit_seconds = 0.0

    def finish(self, rows: np.ndarray, columns: Columns | BaseException, final: bool) -> None:
        if isinstance(columns, BaseException):  # the whole task was lost: every file fails alike
            reason = f"task failed: {type(columns).__name__}: {columns}"
            columns = [None] * len(rows), [(i, reason, "task") for i in range(len(rows))], [0] * len(rows)
        values, errors, nbytes = columns
        fresh = ~self.done[rows]
        self.attempts[rows] += 1
        ok = fresh.copy()
        retry, lost = [], []
        for position, reason, kind in errors:
            ok[position] = False
            if not fresh[position]:
                continue
            if final or kind not in RETRYABLE:
                self.failed_rows.append(int(rows[position]))
                self.reasons.append((reason, kind))
                self.done[rows[position]] = True
            else:
                (lost if kind == "task" else retry).append(rows[position])
        if retry:
            self.retry.append(np.asarray(retry))
        if lost:
            self.lost.append(np.asarray(lost))
        if ok.any():
            kept = np.flatnonzero(ok)
            self.store.add(rows[kept], values if len(kept) == len(values) else [values[i] for i in kept])
            self.done[rows[kept]] = True
            self.succeeded += len(kept)
        ended = fresh & self.done[rows]
        self.bytes += int(np.asarray(nbytes)[ended].sum()) if ended.any() else 0
        self.bar.update(int(ended.sum()))

    def take_pilot(self, keys: np.ndarray, outcomes: list[dict]) -> np.ndarray:
        """End the files the pilot ran (``burst_plan``); the rows the run still has to do."""
        if outcomes:
            by_key = {o["datakey"]: o for o in outcomes}
            rows = np.flatnonzero(pd.Series(keys).isin(list(by_key)).to_numpy())
            ran = [by_key[keys[row]] for row in rows]
            columns = (
                [o.get("value") for o in ran],
                [(i, o["error"], o["kind"]) for i, o in enumerate(ran) if o.get("error")],
                [outcome_bytes(o) for o in ran],
            )
            self.finish(rows, columns, final=False)
        self.retry, self.lost = [], []  # the pilot's failed files are simply not done yet
        return np.flatnonzero(~self.done)

    def take_retries(self) -> tuple[np.ndarray, np.ndarray]:
        """The second round's files: transient failures, and the files of lost tasks."""
        retry, lost = (
            np.unique(np.concatenate(part)) if part else np.arange(0) for part in (self.retry, self.lost)
        )
        self.retry, self.lost = [], []
        return retry[~self.done[retry]], lost[~self.done[lost]]

    def failures(self, frame: pd.DataFrame) -> pd.DataFrame:
        rows = np.asarray(self.failed_rows, dtype=int)
        order = np.argsort(rows, kind="stable")
        return pd.DataFrame(
            {
                "datakey": frame["datakey"].to_numpy()[rows[order]].astype(str) if len(rows) else [],
                "reason": [self.reasons[i][0] for i in order],
                "kind": [self.reasons[i][1] for i in order],
                "attempts": self.attempts[rows[order]].astype(int) if len(rows) else [],
            }
        )


class _NoBar:
    def update(self, n: int) -> None:
        return None

    def close(self) -> None:
        return None


class _CallbackBar(_NoBar):
    """``progress=callable``: told ``(files done, files)`` each time a batch's files end."""

    def __init__(self, total: int, callback: Callable[[int, int], None]):
        self.total, self.callback, self.count = total, callback, 0

    def update(self, n: int) -> None:
        if n:
            self.count += n
            self.callback(self.count, self.total)


def _progress(total: int, progress: bool | Callable[[int, int], None]):
    if callable(progress):
        return _CallbackBar(total, progress)
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="file", desc="burst")
