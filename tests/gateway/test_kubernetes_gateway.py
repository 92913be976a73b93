"""dask-gateway's kubernetes backend as Parhelion configures it: placement, image, metering,
and the per-user aggregate limits counted from the DaskCluster objects' replicas."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from dask_gateway_server.models import ClusterStatus
from traitlets.config import Config

from platform_tools.accounting.k8s import KIND, METERED, USER
from platform_tools.config import parse_platform
from platform_tools.gateway.kubernetes import (
    SPOT_TAINT,
    ParhelionKubeBackend,
    configure_kubernetes_gateway,
    kubernetes_options_handler,
)

pytestmark = pytest.mark.unit
GIB = 2**30


@pytest.fixture
def platform(example_text):
    return parse_platform(example_text)  # researchers: 4 Dask cores, 8 GiB, 2 clusters


@pytest.fixture
def config(platform, example_text, tmp_path) -> Config:
    (tmp_path / "platform.yaml").write_text(example_text)
    c = Config()
    configure_kubernetes_gateway(c, platform)
    c.AggregateLimitsMixin.platform_config_path = str(tmp_path / "platform.yaml")  # read live, as deployed
    return c


def test_workers_go_to_the_spot_pool_and_schedulers_do_not(config):
    workers = config.KubeClusterConfig.worker_extra_pod_config
    assert workers["nodeSelector"] == {"parhelion.dev/pool": "dask-workers"}
    assert workers["tolerations"] == [SPOT_TAINT]
    scheduler = config.KubeClusterConfig.scheduler_extra_pod_config
    assert scheduler["nodeSelector"] == {"parhelion.dev/pool": "users"} and "tolerations" not in scheduler
    assert config.KubeClusterConfig.worker_extra_pod_labels == {METERED: "true", KIND: "dask-worker"}
    assert config.KubeClusterConfig.scheduler_extra_pod_labels == {METERED: "true", KIND: "dask-scheduler"}
    assert config.KubeClusterConfig.idle_timeout == 30 * 60


def test_options_carry_the_image_and_the_owner(config, platform):
    options = config.Backend.cluster_options
    defaults = {field.field: field.default for field in options.fields}
    assert defaults["image"] == platform.dask_image  # the platform's; clients send their server's
    chosen = SimpleNamespace(worker_cores=2.0, worker_memory=4.0, image="ghcr.io/x/parhelion-helio:2026.11.0")
    settings = kubernetes_options_handler(chosen, SimpleNamespace(name="ann@example.org"))
    assert settings["image"] == chosen.image
    assert settings["worker_memory"] == settings["worker_memory_limit"] == 4 * GIB
    assert settings["worker_extra_pod_annotations"] == {USER: "ann@example.org"}


class FakeCustomObjects:
    def __init__(self):
        self.patches = []

    async def patch_namespaced_custom_object(self, group, version, namespace, plural, name, patch):
        self.patches.append((name, patch))


def backend(config, clusters: dict[str, tuple[str, int]]) -> ParhelionKubeBackend:
    """The backend's caches as its informer fills them: name -> (user, replicas)."""
    instance = ParhelionKubeBackend(config=config)
    size = {"scheduler_cores": 1, "scheduler_memory": GIB, "worker_cores": 1, "worker_memory": GIB}
    instance.clusters = {
        name: SimpleNamespace(name=name, username=user, config=size, status=ClusterStatus.RUNNING)
        for name, (user, _) in clusters.items()
    }
    objects = {name: {"spec": {"replicas": replicas}} for name, (_, replicas) in clusters.items()}
    instance.informer = SimpleNamespace(get=objects.get)
    instance.custom_client = FakeCustomObjects()
    instance.crd_version = "v1alpha1"
    return instance


def test_scaling_is_clamped_by_the_users_other_clusters(config):
    # demo already runs a cluster of a scheduler and 2 workers (3 cores); quota 4 cores:
    # a second cluster's scheduler takes the last core, so it may have no workers
    gateway = backend(config, {"ns.a": ("demo", 2), "ns.b": ("demo", 0), "ns.c": ("someone", 5)})
    assert gateway._user_usage("demo") == (2, 4.0, 4.0)
    message = {"count": 3, "active_workers": [], "closing_workers": [], "closed_workers": []}
    asyncio.run(gateway.on_cluster_heartbeat("ns.b", message))
    assert gateway.custom_client.patches == [("b", [{"op": "add", "path": "/spec/replicas", "value": 0}])]
    # with the first cluster gone, the second gets the three workers that fit
    gateway = backend(config, {"ns.b": ("demo", 0)})
    asyncio.run(gateway.on_cluster_heartbeat("ns.b", message))
    assert gateway.custom_client.patches[-1][1][0]["value"] == 3
