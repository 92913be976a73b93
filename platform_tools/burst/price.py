"""A price before you press run: what a burst will read, take and cost, and whether it fits.

    plan = burst_plan(files, mean_rate, workers=8)
    print(plan)   # 2,000 files, 18.0 GB to read; about 3 min 20 s on 8 workers ... $24.97 left ...

The time comes from a measured rate, not a guess: a pilot runs the function on a sample of
the files spread over the whole list, a few files on every thread of the cluster at once,
so fetch latency, decoding, the S3 server's share of the CPU and the function itself are
all in it. Each pilot task times its own work (scheduling delays are not the job's rate),
giving seconds of one core per file; the job's time is that times the files, over the
cores asked for. Nothing is wasted: ``burst_map`` keeps the pilot's outcomes and runs only
the rest.

The dollars are the cost rule's (``pricing.cost``) for workers of the cluster's size on the
platform's node (``PARHELION_NODE``), as the burst report prices them; the budget is the
accounting service's (``clients.spend``): the least left of the user's own and their
groups' budgets. ``burst_map`` refuses a job whose estimate exceeds it unless the caller
passes ``accept_cost=True``; the cap itself still stops work when the budget runs out.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from platform_tools.burst.plan import batch_starts
from platform_tools.burst.s3options import options_for_concurrency
from platform_tools.burst.worker import Item, Reader, outcome_bytes, run_batch
from platform_tools.clients.spend import BudgetLeft, budget_left
from platform_tools.contract.environment import NODE_VARIABLE

PILOT_FILES_PER_THREAD = (2, 8)  # at least, at most; about 2% of the job in between
PILOT_SHARE = 0.02
PILOT_MAX_SHARE = 0.1


class BurstBudgetError(RuntimeError):
    """A burst whose estimated cost exceeds what is left of the budget (the plan's sentence)."""

    def __init__(self, plan: BurstPlan):
        self.plan = plan
        super().__init__(
            f"{plan}\nThis burst would cost about ${plan.cost_usd:.4f}, more than is left; only the "
            f"pilot's {plan.sample} files ran. Run it anyway with burst_map(..., plan=error.plan, "
            "accept_cost=True) (the pilot's results are kept; your budget's cap still stops it when "
            "the money runs out), or run fewer files (fewer workers take longer for about the same "
            "dollars)."
        )


@dataclass
class BurstPlan:
    """The estimate for a burst of ``files`` on ``workers`` workers, and the pilot it came from."""

    files: int
    bytes: int
    bytes_measured: bool  # from the catalog's sizes (True) or the pilot's mean (False)
    workers: int
    threads: int
    seconds: float
    core_seconds_per_file: float
    sample: int
    price_per_hour: float | None
    node: str | None
    budget: BudgetLeft
    pilot_seconds: float = 0.0  # the pilot's time, part of ``seconds`` (its files are done)
    overhead_seconds: float = 0.0  # a round of tasks beside their work, measured by the pilot
    pilot_outcomes: list[dict] = field(default_factory=list, repr=False)
    # what the pilot ran: burst_map keeps its outcomes only for the same function and reader
    func: Callable | None = field(default=None, repr=False, compare=False)
    reader: str | None = None

    @property
    def files_per_second_per_core(self) -> float:
        return 1 / self.core_seconds_per_file if self.core_seconds_per_file else math.inf

    @property
    def cost_usd(self) -> float | None:
        return None if self.price_per_hour is None else self.price_per_hour * self.seconds / 3600

    @property
    def fits_budget(self) -> bool:
        """False only when both the cost and the budget are known and the cost is larger."""
        cost, left = self.cost_usd, self.budget.usd
        return cost is None or left is None or not self.budget.known or cost <= left

    def __str__(self) -> str:
        size = _size(self.bytes) + ("" if self.bytes_measured else " (estimated from the sample)")
        cost = (
            "cost unknown (no node price here)"
            if self.cost_usd is None
            else f"about ${self.cost_usd:.4f} by the cost rule on {self.node}"
        )
        return (
            f"Plan: {self.files:,} files, {size} to read; about {_duration(self.seconds)} on "
            f"{self.workers} workers ({self.threads} threads) at {self.files_per_second_per_core:.2f} "
            f"files/s per core (measured on {self.sample} files); {cost}; {self.budget.describe()}."
        )

    def check(self, accept_cost: bool = False) -> None:
        """Raise ``BurstBudgetError`` if the estimate exceeds the budget and was not accepted.

        A pilot that ran every file leaves nothing to refuse: its money is spent and its
        results are the run's."""
        if not accept_cost and not self.fits_budget and self.sample < self.files:
            raise BurstBudgetError(self)


def burst_plan(
    files: Any,
    func: Callable,
    *,
    workers: int | None = None,
    client: Any = None,
    reader: Reader = "image",
    storage_options: dict | None = None,
    concurrency: int = 16,
    budget: BudgetLeft | None = None,
) -> BurstPlan:
    """Measure ``func`` on a sample of ``files`` on the cluster, and price the whole job.

    ``workers`` (default: the cluster's) is how many workers of the cluster's size the
    estimate is for: plan on a small cluster, then start the one the plan says you need.
    """
    from platform_tools.burst.run import file_items

    frame, items = file_items(files)
    client, storage_options = run_inputs(client, storage_options, items, concurrency)
    return plan_items(frame, items, func, client, workers, reader, storage_options, concurrency, budget)


def plan_items(
    frame, items, func, client, workers, reader, storage_options, concurrency, budget
) -> BurstPlan:
    """``burst_plan`` for files already made into (url, size) items (``burst_map`` calls it)."""
    nthreads = client.nthreads()
    if not nthreads:
        raise RuntimeError(
            "the cluster has no workers yet: wait for them (burst_cluster does) and plan again"
        )
    threads_here = sum(nthreads.values())
    per_worker = threads_here / len(nthreads)
    workers = workers or len(nthreads)
    budget = budget if budget is not None else budget_left()
    sample = _sample(items, threads_here)
    # A fresh worker imports its libraries, opens its filesystem and connections, and loads
    # astropy's decompression once: costs of the cluster's start (seconds on a cold worker),
    # not rates of the job, so every worker pays them on one file before the pilot is timed
    # (and unpickles the function, which imports its module).
    client.run(_warm, items[0], reader, storage_options, func)
    started = time.perf_counter()
    outcomes, busy, longest = _pilot(client, sample, threads_here, func, reader, storage_options, concurrency)
    pilot_seconds = time.perf_counter() - started
    per_file = busy / len(sample)
    # what a round of tasks costs beside the work (submitting, scheduling, gathering)
    overhead = max(0.0, pilot_seconds - longest)
    threads = max(1, round(workers * per_worker))
    total_bytes = int(sum(size for _, size in items)) if "filesize" in frame.columns else 0
    sizes_known = total_bytes > 0  # a catalog's sizes; zeros (or none) say nothing
    if not sizes_known:  # the pilot's mean, counting what lazy readers fetched themselves
        measured = [outcome_bytes(o) for o in outcomes if not o.get("error")]
        total_bytes = int(sum(measured) / len(measured) * len(items)) if measured else 0
    price, node = _price(client, workers)
    return BurstPlan(
        files=len(items),
        bytes=total_bytes,
        bytes_measured=sizes_known,
        workers=workers,
        threads=threads,
        seconds=pilot_seconds + overhead + _work_seconds(_rest(items, sample), per_file, threads),
        core_seconds_per_file=per_file,
        sample=len(sample),
        price_per_hour=price,
        node=node,
        budget=budget,
        pilot_seconds=pilot_seconds,
        overhead_seconds=overhead,
        pilot_outcomes=outcomes,
        func=func,
        reader=reader,
    )


def _rest(items: list[Item], sample: list[Item]) -> list[int]:
    """The sizes of the files the run will do after the pilot."""
    done = {url for url, _ in sample}
    return [size for url, size in items if url not in done]


def _work_seconds(sizes: list[int], core_seconds_per_file: float, threads: int) -> float:
    """Every core busy for its share of the files, plus the tail: the run's tasks (planned
    as the run will plan them) end staggered, so the last thread finishes about half a
    task after the average."""
    if not sizes:
        return 0.0
    tasks = len(batch_starts(sizes, threads, seconds_per_file=core_seconds_per_file))
    even = len(sizes) * core_seconds_per_file / threads
    return even + len(sizes) / tasks * core_seconds_per_file / 2


def _sample(items: list[Item], threads: int) -> list[Item]:
    """A few files per thread, spread evenly over the whole list (not just its start); on a
    big cluster for a small job, at most a tenth of the files (but one for every thread, so
    the rate is measured with all of them busy), as the pilot runs before any refusal."""
    low, high = PILOT_FILES_PER_THREAD
    per_thread = min(high, max(low, math.ceil(PILOT_SHARE * len(items) / threads)))
    count = min(len(items), per_thread * threads, max(threads, math.ceil(PILOT_MAX_SHARE * len(items))))
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def _warm(item: Item, reader: Reader, storage_options: dict | None, func: Callable) -> None:
    """Fetch and decode one file with a function that does nothing; ``func`` is only unpickled
    (which imports its module, seconds for some), not called."""
    del func
    run_batch([item], func=_nothing, reader=reader, storage_options=storage_options)


def _nothing(*_: Any) -> None:
    return None


def _timed_batch(items: list[Item], **options: Any) -> tuple[list[dict], float]:
    """``run_batch`` and the seconds this thread spent on it."""
    started = time.perf_counter()
    outcomes = run_batch(items, **options)
    return outcomes, time.perf_counter() - started


def _pilot(
    client, sample, threads, func, reader, storage_options, concurrency
) -> tuple[list[dict], float, float]:
    """The sample's outcomes, the thread-seconds they took, and the longest task's seconds:
    one task per thread, all at once."""
    groups = [sample[i::threads] for i in range(threads)]
    groups = [group for group in groups if group]
    task = partial(
        _timed_batch, func=func, reader=reader, storage_options=storage_options, concurrency=concurrency
    )
    token = uuid.uuid4().hex[:8]
    futures = client.map(
        task, groups, key=[f"burst-pilot-{token}-{i}" for i in range(len(groups))], pure=False
    )
    try:
        answers = client.gather(futures, errors="skip")
    except BaseException:  # an interrupted cell: the pilot's tasks stop too (see run.py)
        client.cancel(futures)
        raise
    outcomes = [outcome for answer, _ in answers for outcome in answer]
    busy = sum(seconds for _, seconds in answers)
    done = {o["datakey"] for o in outcomes}
    for group, future in zip(groups, futures, strict=True):
        if future.status == "error":  # the task died: its files are retried by the run
            outcomes.extend(
                {
                    "datakey": url,
                    "error": f"pilot task failed: {future.exception()}",
                    "kind": "fetch",
                    "bytes": 0,
                }
                for url, _ in group
                if url not in done
            )
    if not answers:
        raise RuntimeError(f"every pilot task failed, e.g. {futures[0].exception()!r}")
    measured = sum(len(answer) for answer, _ in answers)
    return outcomes, busy * len(sample) / measured, max(seconds for _, seconds in answers)


def cluster_cost_per_hour(client: Any) -> float | None:
    """$/hour of the client's workers by the cost rule, on the platform's node (PARHELION_NODE)."""
    price, _ = _node_price(client)
    return price


def _price(client: Any, workers: int) -> tuple[float | None, str | None]:
    """$/hour of ``workers`` workers of the cluster's mean size, and the node's name."""
    price, node = _node_price(client)
    if price is None:
        return None, None
    return price / len(client.nthreads()) * workers, node


def _node_price(client: Any) -> tuple[float | None, str | None]:
    node_text = os.environ.get(NODE_VARIABLE)
    if not node_text:
        return None, None
    from platform_tools.pricing.catalog import Node
    from platform_tools.pricing.cost import hourly_cost

    node = Node(**json.loads(node_text))
    total = 0.0
    for worker in client.scheduler_info()["workers"].values():
        total += hourly_cost(worker["nthreads"], worker.get("memory_limit", 0) / 2**30, node)
    return total, f"{node.instance_type} ({node.capacity_type}, {node.region})"


def run_inputs(
    client: Any, storage_options: dict | None, items: list[Item], concurrency: int
) -> tuple[Any, dict]:
    """The client (default: the current one) and the storage options (default: the files'
    archive's) a burst and its plan use, with room for ``concurrency`` GETs on S3: one rule
    for both, so the pilot measures what the run does."""
    if not items:
        raise ValueError("no files to process")
    if storage_options is None:
        from platform_tools.archives import storage_options as archive_options

        storage_options = archive_options(items[0][0])
    if client is None:
        from distributed import get_client

        client = get_client()
    return client, options_for_concurrency(items[0][0], storage_options, concurrency)


def _size(nbytes: int) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
