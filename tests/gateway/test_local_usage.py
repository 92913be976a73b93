"""The usage rule on the database backends (local, system users), with Parhelion's local
backend and dask-gateway's own DataManager: workers retiring after a scale-down count until
they have stopped, so another cluster's scale-up cannot overlap them (the same rule as on
Kubernetes, tests/gateway/test_kubernetes_limits.py)."""

from __future__ import annotations

import asyncio

import pytest
from dask_gateway_server.backends.db_base import DataManager, JobStatus
from dask_gateway_server.workqueue import WorkQueue
from traitlets.config import Config

from platform_tools.gateway.limits import ParhelionLocalBackend

pytestmark = pytest.mark.unit
GIB = 2**30
SIZE = {  # dask-gateway's default scheduler, the example's default worker
    "scheduler_cores": 1,
    "scheduler_memory": 2 * GIB,
    "worker_cores": 1,
    "worker_memory": GIB,
    "cluster_max_workers": 4,
}


def heartbeat(count: int, active=(), closing=()) -> dict:
    return {
        "count": count,
        "active_workers": list(active),
        "closing_workers": list(closing),
        "closed_workers": [],
    }


def test_retiring_workers_count_until_they_have_stopped(example_text, tmp_path):
    (tmp_path / "platform.yaml").write_text(example_text)  # demo: 4 cores
    c = Config()
    c.AggregateLimitsMixin.platform_config_path = str(tmp_path / "platform.yaml")
    backend = ParhelionLocalBackend(config=c)

    async def scenario():
        backend.db = DataManager()
        backend.queue = WorkQueue()
        a, b = (backend.db.create_cluster("demo", {}, SIZE) for _ in range(2))
        backend.db.update_clusters([(a, {"status": JobStatus.RUNNING}), (b, {"status": JobStatus.RUNNING})])
        await backend.on_cluster_heartbeat(a.name, heartbeat(2))
        workers = [backend.db.create_worker(a) for _ in range(2)]
        backend.db.update_workers([(w, {"status": JobStatus.RUNNING}) for w in workers])
        names = [w.name for w in workers]
        await backend.on_cluster_heartbeat(a.name, heartbeat(0, closing=names))  # scale(0): they retire
        await backend.on_cluster_heartbeat(b.name, heartbeat(2))
        while_retiring = b.count
        backend.db.update_workers(
            [(w, {"status": JobStatus.STOPPED, "target": JobStatus.STOPPED}) for w in workers]
        )
        await backend.on_cluster_heartbeat(b.name, heartbeat(2))
        return a.count, while_retiring, b.count

    assert asyncio.run(scenario()) == (0, 0, 2)
