"""How many files go in one task: sized from the files' bytes, the cluster's threads and the job's size.

Too small a task and the scheduler's per-task overhead and per-task fetch start-up
dominate; too large and the last tasks leave most of the cluster idle, and the progress
bar jumps or stalls. The plan aims at ``tasks_per_thread`` tasks for every worker thread and, for a
big job, at least ``min_tasks`` tasks (the bar then moves in steps of at most
1/``min_tasks`` of the files), but never below ``min_batch_files`` files a task (so each
task still fetches ``concurrency`` files at a time) nor above ``max_batch_files`` files or
``max_batch_bytes`` (so the task count grows only with the job, and a task's memory is
bounded). Files stay in key order (neighbours in time share a prefix, and results come
back in order). The plan is one pass over the sizes: O(n), tens of milliseconds at 130k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MiB = 2**20


def batch_starts(
    sizes: Sequence[int],
    threads: int,
    *,
    tasks_per_thread: int = 3,
    min_tasks: int = 256,
    min_batch_files: int = 32,
    max_batch_bytes: int = 512 * MiB,
    max_batch_files: int = 2000,
    seconds_per_file: float | None = None,
    update_seconds: float = 1.0,
) -> list[int]:
    """Where each batch starts in ``sizes`` (the files' bytes, in order); the first is 0.

    ``seconds_per_file`` (one core's, e.g. the pricing pilot's measure) bounds a task's
    length too: with tasks of ``threads * update_seconds`` seconds ending staggered, one
    ends about every ``update_seconds``, so the bar does not stall (never below
    ``min_batch_files`` files a task, so a slow function's tasks stay whole groups).
    """
    n = len(sizes)
    if not n:
        return []
    tasks = max(threads * tasks_per_thread, min(min_tasks, math.ceil(n / min_batch_files)), 1)
    files_cap = max(1, min(max_batch_files, math.ceil(n / tasks)))
    if seconds_per_file:
        files_cap = min(files_cap, max(min_batch_files, int(threads * update_seconds / seconds_per_file)))
    sizes = [max(int(size), 1) for size in sizes]
    # as many bytes as files_cap files of the mean size (so uniform files split by count)
    bytes_cap = min(max(files_cap * sum(sizes) / n, max(sizes)), max_batch_bytes)
    starts = [0]
    count = used = 0
    for index, size in enumerate(sizes):
        if count and (count >= files_cap or used + size > bytes_cap):
            starts.append(index)
            count = used = 0
        count += 1
        used += size
    return starts


def plan_batches(items: list[tuple[str, int]], threads: int, **limits: int) -> list[list[tuple[str, int]]]:
    """Consecutive batches of ``items`` ((url, bytes) pairs), each about the same size."""
    starts = batch_starts([size for _, size in items], threads, **limits)
    return [items[lo:hi] for lo, hi in batch_bounds(starts, len(items))]


def batch_bounds(starts: list[int], n: int) -> list[tuple[int, int]]:
    """(start, end) of each batch from ``batch_starts`` over ``n`` files."""
    return list(zip(starts, [*starts[1:], n], strict=True)) if starts else []
