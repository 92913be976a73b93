"""The per-user aggregate limits under concurrency, with dask-gateway-server's real kubernetes
backend (Parhelion's subclass) against the Kubernetes API stand-in (tests/rehearsal): its
informers watch DaskClusters and pods over HTTP, so they see the backend's own writes late,
as on a cluster. The demo user (researchers) may have 2 clusters, 4 cores and 8 GiB."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiohttp import web
from dask_gateway_server.models import User
from traitlets.config import Config

from platform_tools.config import parse_platform
from platform_tools.gateway.kubernetes import ParhelionKubeBackend, configure_kubernetes_gateway
from platform_tools.gateway.limits import ClusterRefused
from tests.rehearsal.apiserver import ObjectStore, serving_api
from tests.rehearsal.test_apiserver_lifecycle import chart_crds
from tests.stand_in_server import kubeconfig_for

pytestmark = pytest.mark.integration
NS = "parhelion"
DEMO = User("demo", groups=["researchers"])
QUOTA_CORES = 4  # the example's researchers
SCHEDULER_CORES = WORKER_CORES = 1  # dask-gateway's scheduler, the example's default worker


async def eventually(check, timeout: float = 10.0):
    for _ in range(int(timeout / 0.02)):
        if result := check():
            return result
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout}s: {check}")


@contextlib.asynccontextmanager
async def kube_gateway(store: ObjectStore, example_text: str, tmp_path, monkeypatch):
    """Parhelion's backend, set up as the gateway does, against the served stand-in."""
    from kubernetes_asyncio.client import Configuration
    from kubernetes_asyncio.config import kube_config

    monkeypatch.delenv("PARHELION_ACCOUNTING_URL", raising=False)
    (tmp_path / "platform.yaml").write_text(example_text)
    c = Config()
    configure_kubernetes_gateway(c, parse_platform(example_text))
    c.AggregateLimitsMixin.platform_config_path = str(tmp_path / "platform.yaml")
    c.KubeBackend.gateway_instance = "gw"
    c.KubeClusterConfig.namespace = NS
    saved = Configuration.get_default_copy()
    async with serving_api(store) as url:
        # where load_kube_config looks (it read KUBECONFIG when imported)
        monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig_for(tmp_path, url)))
        backend = ParhelionKubeBackend(config=c)
        await backend.setup(web.Application())
        try:
            yield backend
        finally:
            await backend.cleanup()
            Configuration.set_default(saved)


@pytest.fixture
def store(tmp_path) -> ObjectStore:
    store = ObjectStore()
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    for crd in chart_crds(tmp_path / "chart"):
        store.register_crd(crd)
    return store


def clusters_in(store: ObjectStore) -> list[dict]:
    return store.list("DaskCluster", NS)


def heartbeat(count: int) -> dict:
    return {"count": count, "active_workers": [], "closing_workers": [], "closed_workers": []}


def cores_asked(store: ObjectStore) -> float:
    """What the DaskClusters ask for: schedulers plus their replicas."""
    return sum(SCHEDULER_CORES + c["spec"].get("replicas", 0) * WORKER_CORES for c in clusters_in(store))


def worker_pod(backend: ParhelionKubeBackend, cluster: str, number: int) -> dict:
    """A worker pod as dask-gateway's controller makes it (its labels)."""
    name = cluster.split(".", 1)[1]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"dask-worker-{name}-{number}",
            "namespace": NS,
            "labels": backend.get_labels(name, "dask-worker"),
        },
        "spec": {"containers": [{"name": "dask-worker", "image": "x"}]},
    }


async def two_clusters(backend: ParhelionKubeBackend) -> list[str]:
    names = [await backend.start_cluster(DEMO, {}) for _ in range(2)]
    await eventually(lambda: all(name in backend.clusters for name in names))
    return names


def test_ten_concurrent_new_clusters_make_exactly_the_quotas_two(store, example_text, tmp_path, monkeypatch):
    async def scenario():
        async with kube_gateway(store, example_text, tmp_path, monkeypatch) as backend:
            results = await asyncio.gather(
                *(backend.start_cluster(DEMO, {}) for _ in range(10)), return_exceptions=True
            )
            await asyncio.sleep(0.5)  # the informer catches up: the reservations give way to it
            again = await asyncio.gather(backend.start_cluster(DEMO, {}), return_exceptions=True)
            return results + again

    results = asyncio.run(scenario())
    made = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, ClusterRefused)]
    assert len(made) == 2 and len(refused) == 9, results
    assert len(clusters_in(store)) == 2
    assert "the most your quota allows (2)" in str(refused[0])


def test_two_clusters_scaled_at_once_stay_within_the_cores(store, example_text, tmp_path, monkeypatch):
    async def scenario():
        async with kube_gateway(store, example_text, tmp_path, monkeypatch) as backend:
            a, b = await two_clusters(backend)
            await asyncio.gather(
                backend.on_cluster_heartbeat(a, heartbeat(5)), backend.on_cluster_heartbeat(b, heartbeat(5))
            )
            return cores_asked(store)

    assert asyncio.run(scenario()) == QUOTA_CORES  # two schedulers and the two workers that fit


def test_retiring_worker_pods_count_until_they_are_gone(store, example_text, tmp_path, monkeypatch):
    """A scaled down: its running workers retire but still hold their cores, so B gets none
    of them until the pods have finished; then B gets what is free."""

    async def scenario():
        async with kube_gateway(store, example_text, tmp_path, monkeypatch) as backend:
            a, b = await two_clusters(backend)
            await backend.on_cluster_heartbeat(a, heartbeat(2))
            pods = [store.create(worker_pod(backend, a, n)) for n in range(2)]
            for pod in pods:  # the kubelet's report
                store.patch(
                    "Pod", pod["metadata"]["name"], NS, {"status": {"phase": "Running"}}, "merge", "status"
                )
            await backend.on_cluster_heartbeat(a, heartbeat(0))  # scale(0): the workers retire
            await asyncio.sleep(1.0)  # the watch events reach the informers
            await backend.on_cluster_heartbeat(b, heartbeat(2))
            while_retiring = store.get("DaskCluster", b.split(".")[1], NS)["spec"]["replicas"]
            for pod in pods:
                store.patch(
                    "Pod", pod["metadata"]["name"], NS, {"status": {"phase": "Succeeded"}}, "merge", "status"
                )
            await asyncio.sleep(1.0)
            await backend.on_cluster_heartbeat(b, heartbeat(2))
            after = store.get("DaskCluster", b.split(".")[1], NS)["spec"]["replicas"]
            return while_retiring, after

    assert asyncio.run(scenario()) == (0, 2)
