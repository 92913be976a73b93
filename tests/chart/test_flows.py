"""The network flows of a Daskhub, evaluated on the rendered NetworkPolicies (all of them:
zero-to-jupyterhub's, dask-gateway's and Parhelion's) and on the labels of the pods that really
run: the chart's Deployments, a user's server as KubeSpawner makes it (with zero-to-jupyterhub's
labels merged as its configuration gives them) and a Dask scheduler and worker as dask-gateway's
controller makes them. Every flow zero-to-jupyterhub's and dask-gateway's install docs require
is allowed; the metadata endpoint, the accounting API from user code, other users' Dask
schedulers and dashboards, and private addresses are denied."""

from __future__ import annotations

import asyncio
import base64
from types import SimpleNamespace

import pytest
import yaml
from traitlets.config import Config

from platform_tools.chart.flows import Endpoint, allowed
from platform_tools.config import parse_platform
from tests.chart.charts import rendered_objects
from tests.hub.test_kubespawner import KUBECONFIG  # an unreachable API: manifests need none

pytestmark = pytest.mark.chart
NAMESPACE = "parhelion"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> list[dict]:
    return rendered_objects(tmp_path_factory)


def _pod(rendered, name: str, ip: str) -> Endpoint:
    deployment = next(o for o in rendered if o["kind"] == "Deployment" and o["metadata"]["name"] == name)
    template = deployment["spec"]["template"]
    ports = {
        p.get("name", str(p["containerPort"])): p["containerPort"]
        for c in template["spec"]["containers"]
        for p in c.get("ports") or []
    }
    return Endpoint(name, ip, template["metadata"]["labels"], NAMESPACE, ports)


def _platform(rendered):
    configmap = next(
        o for o in rendered if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "parhelion-platform"
    )
    return parse_platform(configmap["data"]["platform.yaml"])


def _server(rendered, tmp_path, monkeypatch, username: str, ip: str) -> Endpoint:
    """The user's pod as KubeSpawner builds it, after zero-to-jupyterhub's config and Parhelion's."""
    from kubernetes_asyncio.config import kube_config
    from kubespawner import KubeSpawner

    from platform_tools.hub.kubernetes import configure_kubernetes_hub, prepare_spawner

    secret = next(o for o in rendered if o["kind"] == "Secret" and o["metadata"]["name"] == "hub")
    values = yaml.safe_load(base64.b64decode(secret["data"]["values.yaml"]))
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))
    monkeypatch.setenv("PARHELION_ACCOUNTING_TOKEN", "t")
    platform = _platform(rendered)
    c = Config()
    # what zero-to-jupyterhub's jupyterhub_config.py sets for these traits (the configload
    # tier runs that file for real and checks the label survives Parhelion's configuration)
    c.KubeSpawner.common_labels = {"app": "jupyterhub", "release": "parhelion", "heritage": "jupyterhub"}
    c.KubeSpawner.extra_labels = dict(values["singleuser"]["extraLabels"])
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "test-client-secret")
    live = SimpleNamespace(current=lambda: platform, path="/etc/parhelion/platform/platform.yaml")
    configure_kubernetes_hub(c, live)
    user = SimpleNamespace(name=username, id=1, url=f"/user/{username}/", spawners={})

    async def build() -> dict:
        spawner = KubeSpawner(_mock=True, config=c, user=user)
        await spawner.load_user_options()
        prepare_spawner(spawner, platform)
        return (await spawner.get_pod_manifest()).to_dict()

    pod = asyncio.run(build())
    ports = {p["name"]: p["container_port"] for c in pod["spec"]["containers"] for p in c.get("ports") or []}
    assert ports == {"notebook-port": 8888}
    return Endpoint(f"server of {username}", ip, pod["metadata"]["labels"], NAMESPACE, ports)


def _dask_pods(rendered, cluster: str, ips: tuple[str, str]) -> tuple[Endpoint, Endpoint]:
    """A scheduler and a worker as dask-gateway's controller makes them from Parhelion's config."""
    from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
    from dask_gateway_server.backends.kubernetes.controller import KubeController
    from dask_gateway_server.utils import FrozenAttrDict

    from platform_tools.gateway.kubernetes import configure_kubernetes_gateway

    c = Config()
    configure_kubernetes_gateway(c, _platform(rendered))
    cluster_config = KubeClusterConfig(config=c)
    values = FrozenAttrDict({name: getattr(cluster_config, name) for name in cluster_config.trait_names()})
    controller = KubeController(config=c, gateway_instance="parhelion-dask-gateway", api_url="http://api/api")
    pods = []
    for is_worker, ip in zip((False, True), ips, strict=True):
        pod = controller.make_pod(NAMESPACE, cluster, values, is_worker=is_worker)
        ports = {
            p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports") or []
        }
        role = "worker" if is_worker else "scheduler"
        pods.append(Endpoint(f"{role} of {cluster}", ip, pod["metadata"]["labels"], NAMESPACE, ports))
    return pods[0], pods[1]


@pytest.fixture(scope="module")
def world(rendered, tmp_path_factory) -> dict[str, Endpoint]:
    monkeypatch = pytest.MonkeyPatch()
    try:
        pods = {
            "hub": _pod(rendered, "hub", "10.1.0.1"),
            "proxy": _pod(rendered, "proxy", "10.1.0.2"),
            "traefik": _pod(rendered, "traefik-parhelion-dask-gateway", "10.1.0.3"),
            "api": _pod(rendered, "api-parhelion-dask-gateway", "10.1.0.4"),
            "controller": _pod(rendered, "controller-parhelion-dask-gateway", "10.1.0.5"),
            "accounting": _pod(rendered, "parhelion-accounting", "10.1.0.6"),
            "server": _server(rendered, tmp_path_factory.mktemp("spawner"), monkeypatch, "amy", "10.1.1.1"),
            "other server": _server(
                rendered, tmp_path_factory.mktemp("spawner"), monkeypatch, "bob", "10.1.1.2"
            ),
        }
    finally:
        monkeypatch.undo()
    pods["scheduler"], pods["worker"] = _dask_pods(rendered, "amyscluster", ("10.1.2.1", "10.1.2.2"))
    pods["other scheduler"], pods["other worker"] = _dask_pods(
        rendered, "bobscluster", ("10.1.3.1", "10.1.3.2")
    )
    pods["dns"] = Endpoint("kube-dns", "10.100.0.10", {"k8s-app": "kube-dns"}, "kube-system")
    pods["metadata"] = Endpoint("instance metadata", "169.254.169.254")
    pods["s3"] = Endpoint("S3 (public AWS)", "52.216.8.1")
    pods["vpc database"] = Endpoint("a database in the VPC", "10.9.9.9")
    pods["kube api"] = Endpoint("the Kubernetes API", "172.20.0.1")
    return pods


REQUIRED = [
    ("proxy", "hub", 8081, "the proxy forwards /hub/ to the hub"),
    ("hub", "proxy", 8001, "the hub sets routes on the proxy's API"),
    ("proxy", "server", 8888, "users reach their server through the proxy"),
    ("hub", "server", 8888, "the hub polls servers"),
    ("server", "hub", 8081, "servers call the hub's API (activity, auth)"),
    ("proxy", "traefik", 8000, "/services/dask-gateway/ goes to the gateway's traefik"),
    ("server", "traefik", 8000, "a notebook's Gateway() and its scheduler connection"),
    ("server", "proxy", 8000, "a kernel's Gateway() and budget query, through the hub's proxy"),
    ("traefik", "api", 8000, "traefik routes the gateway's API"),
    ("traefik", "scheduler", 8786, "clients' TLS connection to their scheduler"),
    ("api", "scheduler", 8787, "the dashboard, through Parhelion's gate on the gateway's API"),
    ("api", "scheduler", 8788, "the gateway API talks to each scheduler"),
    ("controller", "api", 8000, "the controller reports to the API server"),
    ("scheduler", "api", 8000, "schedulers' heartbeats"),
    ("worker", "scheduler", 8786, "workers join their scheduler"),
    ("scheduler", "worker", 8789, "the scheduler reaches its workers"),
    ("worker", "worker", 8789, "workers exchange data"),
    ("hub", "accounting", 8080, "the hub's spawn checks"),
    ("proxy", "accounting", 8080, "people's spend pages through the proxy"),
    ("api", "accounting", 8080, "the gateway's budget checks"),
    ("accounting", "hub", 8081, "the meter and the enforcer use the hub's API"),
    ("accounting", "traefik", 8000, "the enforcer stops clusters through the gateway"),
    ("server", "s3", 443, "notebooks read the archives"),
    ("worker", "s3", 443, "burst workers read the archives"),
]

DENIED = [
    ("server", "metadata", 80, "the node's credentials"),
    ("worker", "metadata", 80, "the node's credentials"),
    ("scheduler", "metadata", 80, "the node's credentials"),
    ("hub", "metadata", 80, "the node's credentials (the hub needs none)"),
    ("proxy", "metadata", 80, "the node's credentials (the proxy needs none)"),
    ("server", "accounting", 8080, "the accounting API from user code (only through the hub)"),
    ("worker", "accounting", 8080, "the accounting API from user code"),
    ("server", "other scheduler", 8787, "another user's dashboard"),
    ("traefik", "scheduler", 8787, "a dashboard around the gate (the controller's per-cluster route)"),
    ("server", "scheduler", 8787, "one's own dashboard around the gate"),
    ("server", "other scheduler", 8786, "another user's scheduler"),
    ("worker", "other scheduler", 8787, "another user's dashboard, from one's own worker"),
    ("worker", "other scheduler", 8788, "another cluster's gateway API port"),
    ("server", "other worker", 8789, "another user's worker"),
    ("server", "other server", 8888, "another user's server"),
    ("server", "api", 8000, "the gateway's API directly (only through traefik)"),
    ("server", "vpc database", 5432, "private addresses"),
    ("worker", "vpc database", 5432, "private addresses"),
    ("server", "kube api", 443, "the Kubernetes API"),
]


@pytest.mark.parametrize(
    ("source", "destination", "port", "why"), REQUIRED, ids=[f"{s}->{d}:{p}" for s, d, p, _ in REQUIRED]
)
def test_required_flows_are_allowed(world, rendered, source, destination, port, why):
    ok, reason = allowed(rendered, world[source], world[destination], port)
    assert ok, f"{why}: {reason}"


@pytest.mark.parametrize(
    ("source", "destination", "port", "why"), DENIED, ids=[f"{s}->{d}:{p}" for s, d, p, _ in DENIED]
)
def test_forbidden_flows_are_denied(world, rendered, source, destination, port, why):
    ok, reason = allowed(rendered, world[source], world[destination], port)
    assert not ok, f"{why} is reachable: {source} -> {destination}:{port}"


def test_everyone_resolves_names(world, rendered):
    for source in ("server", "worker", "scheduler", "accounting"):
        assert allowed(rendered, world[source], world["dns"], 53, "UDP")[0], source


def test_the_workers_pinned_ports_are_what_the_policies_admit(rendered):
    from platform_tools.gateway.kubernetes import NANNY_PORT, WORKER_COMMAND, WORKER_PORT

    assert WORKER_COMMAND[-4:] == ("--worker-port", str(WORKER_PORT), "--nanny-port", str(NANNY_PORT))
    dask = next(
        o for o in rendered if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "parhelion-dask"
    )
    admitted = {p["port"] for p in dask["spec"]["ingress"][0]["ports"]}
    assert admitted == {8786, WORKER_PORT, NANNY_PORT}
