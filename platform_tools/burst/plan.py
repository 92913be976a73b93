"""How many files go in one task: sized from the files' bytes and the cluster's threads.

Too small a task and the scheduler's per-task overhead and per-task fetch start-up
dominate; too large and the last tasks leave most of the cluster idle. The plan aims at
``tasks_per_thread`` tasks for every worker thread, bounded in bytes, keeping files in
key order (neighbours in time share a prefix, and results come back in order).
"""

from __future__ import annotations

import math

MiB = 2**20


def plan_batches(
    items: list[tuple[str, int]],
    threads: int,
    *,
    tasks_per_thread: int = 3,
    min_batch_bytes: int = 8 * MiB,
    max_batch_bytes: int = 512 * MiB,
    max_batch_files: int = 2000,
) -> list[list[tuple[str, int]]]:
    """Consecutive batches of ``items`` ((url, bytes) pairs), each about the same size."""
    if not items:
        return []
    total = sum(max(size, 1) for _, size in items)
    target = total / max(1, threads * tasks_per_thread)
    target = min(max(target, min_batch_bytes), max_batch_bytes)
    # never fewer tasks than threads while files last, so no thread idles from the start
    files_per_thread_cap = math.ceil(len(items) / max(1, threads))
    batches: list[list[tuple[str, int]]] = [[]]
    size = 0
    for item in items:
        batch = batches[-1]
        full = size + max(item[1], 1) > target or len(batch) >= min(max_batch_files, files_per_thread_cap)
        if batch and full:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += max(item[1], 1)
    return batches
