"""S3 storage options that let a worker keep ``concurrency`` GETs in flight, one per file.

On S3 every request waits tens of milliseconds for its first byte, so a worker hides that
wait only by having several GETs in flight at once. By Little's law a worker needs about

    GETs in flight = files per second it processes x seconds per GET
                   = files/s x (first-byte latency + object size / bandwidth per connection)

and ``burst_map``'s ``concurrency`` (16) is that number, with room to spare for small
objects or fast functions (an AIA file at 30 ms and 90 MB/s needs ~1; 100 kB objects read
by a 5 ms function need ~7). Two library defaults quietly undo it, which loopback never
shows and the emulated S3 link (tests/s3link.py) does:

* botocore's connection pool holds 10 connections (``max_pool_connections``), so at most
  10 GETs are in flight however many are asked for: the pool is made at least
  ``concurrency``;
* s3fs sends a HEAD before every whole-object read (to decide whether to split a file over
  its 50 MB block into parallel ranged GETs) unless its ``max_concurrency`` is 1: two round
  trips and two billed requests per file. Burst's parallelism is across files, so it reads
  each file with one GET.

On the link (30 ms, 90 MB/s) 64 objects of 100 kB fetched 16 at a time took 0.9-1.1 s with
the library defaults and 0.41-0.45 s with these. The caller's own settings always win.
"""

from __future__ import annotations

S3_PROTOCOLS = ("s3://", "s3a://")


def options_for_concurrency(url: str, storage_options: dict, concurrency: int) -> dict:
    """``storage_options`` for S3 ``url``s with room for ``concurrency`` GETs, one per file."""
    if not url.startswith(S3_PROTOCOLS):
        return storage_options
    config = dict(storage_options.get("config_kwargs") or {})
    config.setdefault("max_pool_connections", max(10, concurrency))
    return {"max_concurrency": 1, **storage_options, "config_kwargs": config}
