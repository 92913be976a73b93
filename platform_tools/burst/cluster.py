"""A Dask cluster for a burst, sized within the user's quota before any work begins.

On the platform the cluster comes from dask-gateway; Parhelion's gateway says how many
workers of this size fit beside the user's other clusters (their aggregate quota), so
the cluster is scaled to exactly that and the burst starts once they are up, instead of
asking for more and waiting for workers that will never come. Where there is no gateway
(a laptop, CI) it is a LocalCluster of the machine's cores.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import dask.config

from platform_tools.contract.services import GatewayPath

log = logging.getLogger(__name__)


class BurstClusterError(RuntimeError):
    """A cluster that could not be had, with the gateway's reason (quota, budget, ...)."""


@dataclass
class BurstCluster:
    """A started cluster and its client; ``close()`` (or ``with``) shuts down what it started."""

    client: Any
    cluster: Any
    workers: int
    worker_cores: float
    worker_memory_gib: float
    asked: int
    note: str = ""
    owned: bool = True
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.client.close()
        if self.owned:
            shutdown = getattr(self.cluster, "shutdown", None) or self.cluster.close
            shutdown()

    def __enter__(self) -> BurstCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def gateway_configured() -> bool:
    return bool(dask.config.get("gateway.address", None))


def burst_cluster(
    workers: int | None = None,
    *,
    worker_cores: float | None = None,
    worker_memory_gib: float | None = None,
    timeout: float = 300,
) -> BurstCluster:
    """Start a cluster of up to ``workers`` workers (default: as many as the quota allows)."""
    if gateway_configured():
        return _gateway_cluster(workers, worker_cores, worker_memory_gib, timeout)
    return _local_cluster(workers, worker_cores, worker_memory_gib)


def _gateway_cluster(workers, worker_cores, worker_memory_gib, timeout) -> BurstCluster:
    from dask_gateway import Gateway

    gateway = Gateway()
    options = gateway.cluster_options()
    server_image = os.environ.get("JUPYTER_IMAGE_SPEC")  # KubeSpawner sets it in every server
    if server_image and "image" in options:  # workers run exactly the notebook's image
        options.image = server_image
    if worker_cores is not None:
        options.worker_cores = worker_cores
    if worker_memory_gib is not None:
        options.worker_memory = worker_memory_gib
    try:
        cluster = gateway.new_cluster(options)
    except ValueError as exc:  # the gateway's refusal (quota, budget), as its message
        gateway.close()
        raise BurstClusterError(str(exc)) from None
    try:
        room = gateway.sync(
            gateway._request, "GET", gateway.address.rstrip("/") + GatewayPath.room(cluster.name)
        )
        room = gateway.sync(room.json)
    except Exception as exc:  # a gateway without Parhelion's backend: trust the request
        log.info("the gateway does not say how many workers fit (%s)", exc)
        room = None
    fit = None if room is None else int(room["workers"])
    asked = workers if workers is not None else (fit or 2)
    granted = asked if fit is None else min(asked, fit)
    if granted < 1:
        cluster.shutdown()
        raise BurstClusterError(
            "your Dask quota leaves no room for a worker of this size beside your other clusters "
            f"({room['other_clusters']['count']} running); shut one down or ask for smaller workers"
        )
    note = "" if granted == asked else f"asked for {asked} workers; your quota allows {granted}"
    cluster.scale(granted)
    client = cluster.get_client()
    try:
        client.wait_for_workers(granted, timeout=timeout)
    except TimeoutError:
        have = len(client.scheduler_info()["workers"])
        if have == 0:
            client.close()
            cluster.shutdown()
            raise BurstClusterError(f"no worker started within {timeout:g} s") from None
        note = (note + "; " if note else "") + f"{have} of {granted} workers started within {timeout:g} s"
        granted = have
    cores = room["worker_cores"] if room else options.worker_cores
    memory = room["worker_memory_gib"] if room else options.worker_memory
    return BurstCluster(client, cluster, granted, cores, memory, asked, note)


def _local_cluster(workers, worker_cores, worker_memory_gib) -> BurstCluster:
    from distributed import Client, LocalCluster

    cores = os.cpu_count() or 1
    threads = int(worker_cores or 1)
    count = workers or max(1, cores // threads)
    memory = worker_memory_gib or 2.0
    cluster = LocalCluster(
        n_workers=count,
        threads_per_worker=threads,
        memory_limit=f"{memory}GiB",
        host="127.0.0.1",
        dashboard_address=None,
    )
    return BurstCluster(Client(cluster), cluster, count, threads, memory, count)
