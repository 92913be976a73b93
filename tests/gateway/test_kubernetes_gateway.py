"""dask-gateway's kubernetes backend as Parhelion configures it: placement, image, metering,
and the per-user aggregate limits counted from the DaskCluster objects' replicas."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from dask_gateway_server.app import DaskGateway
from dask_gateway_server.models import ClusterStatus
from traitlets.config import Config

from platform_tools.config import parse_platform
from platform_tools.contract.labels import KIND, METERED, USER
from platform_tools.gateway.kubernetes import (
    SPOT_TAINT,
    ParhelionKubeBackend,
    configure_kubernetes_gateway,
    kubernetes_options_handler,
)
from tests.platform import REPO_ROOT

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


def test_the_dask_gateway_charts_extra_pod_config_values_win(platform):
    """gateway.backend.worker.extraPodConfig (set before Parhelion's subconfig by the chart's
    generated configuration) overrides the pool placement: a single-node cluster's workers."""
    c = Config()
    c.KubeClusterConfig.worker_extra_pod_config = {
        "nodeSelector": {"parhelion.dev/pool": "users"},
        "tolerations": [],
    }
    configure_kubernetes_gateway(c, platform)
    workers = c.KubeClusterConfig.worker_extra_pod_config
    assert workers["nodeSelector"] == {"parhelion.dev/pool": "users"} and workers["tolerations"] == []
    assert workers["priorityClassName"] == "parhelion-dask-workers"  # what the values leave unset stays


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
    objects = {
        name: {"spec": {"replicas": replicas, "username": user, "config": size}}
        for name, (user, replicas) in clusters.items()
    }
    instance.informer = SimpleNamespace(get=objects.get, cache=objects)
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


def test_the_charts_gateway_config_runs_parhelions_from_the_configmap(example_text, tmp_path, monkeypatch):
    """dask-gateway-server's own loader, given a file shaped like the one the dask-gateway chart
    generates (its backend first, then gateway.extraConfig from Parhelion's values), with the
    environment the values give the API pod: Parhelion's backend, configured from the text."""
    values = yaml.safe_load((REPO_ROOT / "helm" / "parhelion" / "values.yaml").read_text())
    gateway_values = values["dask-gateway"]["gateway"]
    line = gateway_values["extraConfig"]["parhelion"].strip()
    in_image = '"/usr/local/etc/dask-gateway/parhelion.py"'
    assert line == f"load_subconfig({in_image})"
    dockerfile = (REPO_ROOT / "images" / "hub" / "Dockerfile").read_text()
    assert f"COPY hub_config/dask_gateway_config.py {in_image.strip(chr(34))}" in dockerfile
    here = str(REPO_ROOT / "hub_config" / "dask_gateway_config.py")
    generated = tmp_path / "dask_gateway_config.py"
    generated.write_text(
        'c.DaskGateway.backend_class = "dask_gateway_server.backends.kubernetes.KubeBackend"\n'
        + line.replace(in_image, repr(here))
        + "\n"
    )
    env = {e["name"]: e.get("value") for e in gateway_values["env"]}
    assert env["PARHELION_BACKEND"] == "kubernetes"
    monkeypatch.delenv("PARHELION_CONFIG", raising=False)
    monkeypatch.setenv("PARHELION_BACKEND", "kubernetes")
    monkeypatch.setenv("PARHELION_CONFIG_YAML", example_text)  # the configMapKeyRef's value
    monkeypatch.setenv("PARHELION_CONFIG_CONFIGMAP", env["PARHELION_CONFIG_CONFIGMAP"])
    monkeypatch.setenv("PARHELION_USER_SERVICE_ACCOUNT", env["PARHELION_USER_SERVICE_ACCOUNT"])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    app = DaskGateway()
    app.load_config_file(str(generated))
    c = app.config
    assert c.DaskGateway.backend_class is ParhelionKubeBackend
    assert c.ParhelionKubeBackend.platform_configmap == "parhelion-platform"
    copied = Path(c.AggregateLimitsMixin.platform_config_path)
    assert copied.read_text() == example_text and copied.is_relative_to(tmp_path)
    assert c.KubeClusterConfig.worker_extra_pod_config["tolerations"] == [SPOT_TAINT]
    # Dask pods run as the users' ServiceAccount the chart makes, as the servers do
    account = values["jupyterhub"]["singleuser"]["serviceAccountName"]
    assert values["users"]["serviceAccount"]["name"] == account == env["PARHELION_USER_SERVICE_ACCOUNT"]
    assert c.KubeClusterConfig.worker_extra_pod_config["serviceAccountName"] == account
    assert c.KubeClusterConfig.scheduler_extra_pod_config["serviceAccountName"] == account
