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

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd

from platform_tools.burst.plan import plan_batches
from platform_tools.burst.price import BurstPlan, cluster_cost_per_hour, plan_items
from platform_tools.burst.s3options import options_for_concurrency
from platform_tools.burst.worker import Reader, run_batch

RETRYABLE = {"fetch"}  # transient failures get a second round on another task


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


@dataclass
class BurstResult:
    results: pd.DataFrame
    failures: pd.DataFrame
    report: BurstReport

    def to_xarray(self, column: str = "value", dim: str = "start"):
        """Array results (``column``) stacked along ``dim`` (a column, e.g. the time)."""
        import numpy as np
        import xarray as xr

        values = np.stack([np.asarray(v) for v in self.results[column]])
        coords = {dim: self.results[dim].to_numpy(), "datakey": (dim, self.results["datakey"].to_numpy())}
        return xr.DataArray(values, dims=[dim, *[f"dim_{i}" for i in range(values.ndim - 1)]], coords=coords)


def file_items(files: pd.DataFrame | list[str]) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    frame = pd.DataFrame({"datakey": list(files)}) if not isinstance(files, pd.DataFrame) else files
    if "datakey" not in frame.columns:
        raise ValueError(
            "files must be a catalog query (a DataFrame with a datakey column) or a list of URLs"
        )
    sizes = frame["filesize"] if "filesize" in frame.columns else pd.Series(1, index=frame.index)
    return frame.reset_index(drop=True), list(
        zip(frame["datakey"].astype(str), sizes.astype(int), strict=True)
    )


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
    progress: bool = True,
    plan: BurstPlan | None = None,
    accept_cost: bool = False,
) -> BurstResult:
    """Apply ``func`` to every file; see the module docstring.

    ``reader`` decides what ``func`` receives: "image" ``(pixels, header)`` of the first
    image HDU; "fits" the HDUList; "bytes" the object's bytes; "lazy" ``(fs, url)`` for
    functions that read only parts of a file (e.g. cutouts). ``storage_options`` default
    to the archive's (``platform_tools.archives``) for the files' bucket.

    The run is priced first (``burst_plan``; or pass the ``plan`` you made): a pilot on a
    sample of the files measures the rate, and a job whose estimate exceeds what is left of
    the budget is refused with ``BurstBudgetError`` unless ``accept_cost=True``. The pilot's
    files are not run again.
    """
    from distributed import as_completed, get_client

    frame, items = file_items(files)
    if not items:
        raise ValueError("no files to process")
    if storage_options is None:
        from platform_tools.archives import storage_options as archive_options

        storage_options = archive_options(items[0][0])
    storage_options = options_for_concurrency(items[0][0], storage_options, concurrency)
    client = client or get_client()
    threads = sum(client.nthreads().values())
    workers = len(client.nthreads())
    price = cluster_cost_per_hour(client)
    if plan is None:
        plan = plan_items(frame, items, func, client, None, reader, storage_options, concurrency, None)
    plan.check(accept_cost)
    started = time.perf_counter()
    outcomes: dict[str, dict] = {}
    attempts: dict[str, int] = {}
    for outcome in plan.pilot_outcomes:
        outcomes[outcome["datakey"]] = outcome
        attempts[outcome["datakey"]] = 1
    pending = [(u, s) for u, s in items if u not in outcomes or _retryable(outcomes[u])]
    bar = _progress(len(items), progress)
    bar.update(len(items) - len(pending))
    tasks = 0
    for round_number in range(2):  # a second round for transient failures
        if not pending:
            break
        batches = plan_batches(pending, threads, tasks_per_thread=tasks_per_thread)
        tasks += len(batches)
        token = uuid.uuid4().hex[:8]
        task = partial(
            run_batch, func=func, reader=reader, storage_options=storage_options, concurrency=concurrency
        )
        futures = client.map(
            task,
            batches,
            key=[f"burst-{token}-{i}" for i in range(len(batches))],
            retries=retries,
            pure=False,
        )
        batch_of = {future.key: batch for future, batch in zip(futures, batches, strict=True)}
        final = round_number == 1
        for future in as_completed(futures):
            done = _outcomes(future, batch_of[future.key])
            for outcome in done:
                outcomes[outcome["datakey"]] = outcome
                attempts[outcome["datakey"]] = attempts.get(outcome["datakey"], 0) + 1
            bar.update(sum(1 for o in done if final or not o.get("error") or o["kind"] not in RETRYABLE))
            future.release()
        pending = [(u, s) for u, s in pending if _retryable(outcomes[u])]
        if not pending:
            break
    bar.close()
    seconds = plan.pilot_seconds + time.perf_counter() - started  # the pilot's files count too
    return _result(frame, outcomes, attempts, seconds, workers, threads, tasks, price, plan)


def _retryable(outcome: dict) -> bool:
    return bool(outcome.get("error")) and outcome["kind"] in RETRYABLE


def _outcomes(future: Any, batch: list[tuple[str, int]]) -> list[dict]:
    """The task's outcomes; a task that failed (after Dask's retries) fails its files."""
    if future.status != "error":
        return future.result()
    error = future.exception()
    reason = f"task failed: {type(error).__name__}: {error}"
    return [{"datakey": url, "error": reason, "kind": "task", "bytes": 0} for url, _ in batch]


def _result(frame, outcomes, attempts, seconds, workers, threads, tasks, price, plan) -> BurstResult:
    ok = [o for o in (outcomes[k] for k in frame["datakey"]) if not o.get("error")]
    bad = [o for o in (outcomes[k] for k in frame["datakey"]) if o.get("error")]
    values = pd.DataFrame({"datakey": [o["datakey"] for o in ok], "value": [o["value"] for o in ok]})
    if ok and all(isinstance(o["value"], dict) for o in ok):
        expanded = pd.DataFrame([o["value"] for o in ok])
        values = pd.concat([values[["datakey"]], expanded], axis=1)
    results = frame.merge(values, on="datakey", how="inner")
    failures = pd.DataFrame(
        {
            "datakey": [o["datakey"] for o in bad],
            "reason": [o["error"] for o in bad],
            "kind": [o["kind"] for o in bad],
            "attempts": [attempts[o["datakey"]] for o in bad],
        }
    )
    report = BurstReport(
        files=len(frame),
        succeeded=len(ok),
        failed=len(bad),
        bytes=sum(_bytes(o) for o in outcomes.values()),
        seconds=seconds,
        workers=workers,
        threads=threads,
        tasks=tasks,
        cost_usd=None if price is None else price * seconds / 3600,
        plan=plan,
    )
    return BurstResult(results, failures, report)


def _bytes(outcome: dict) -> int:
    """Bytes fetched for a file: counted by the task, or by a lazy reader (``bytes_read``)."""
    value = outcome.get("value")
    return outcome.get("bytes", 0) + (value.get("bytes_read", 0) if isinstance(value, dict) else 0)


class _NoBar:
    def update(self, n: int) -> None:
        return None

    def close(self) -> None:
        return None


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="file", desc="burst")
