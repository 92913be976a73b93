"""The watchers and discoverers of the rehearsal's processes, against the API stand-in:
kubernetes_asyncio's Watch (events, resuming, 410 Gone), KubeSpawner's own reflectors,
dask-gateway's informer on the DaskCluster CRD of its chart, and kubernetes.core's path (the
synchronous kubernetes client's DynamicClient: discovery, get, patch)."""

from __future__ import annotations

import asyncio

import pytest

from tests.rehearsal.apiserver import ApiServer, ObjectStore, serving_api
from tests.rehearsal.test_apiserver import NS, pod, with_clients
from tests.rehearsal.test_apiserver_lifecycle import chart_crds, daskcluster
from tests.stand_in_server import serving_in_thread

pytestmark = pytest.mark.rehearsal


@pytest.fixture
def store() -> ObjectStore:
    store = ObjectStore()
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return store


def named(name: str, labels: dict | None = None, node: str | None = None) -> dict:
    made = pod(name, labels, node)
    made["metadata"]["namespace"] = NS
    return made


async def eventually(check, timeout: float = 5.0):
    for _ in range(int(timeout / 0.02)):
        if result := check():
            return result
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout}s: {check}")


def test_watch_streams_changes_and_leaves_the_selection_as_deleted(store):
    from kubernetes_asyncio import watch
    from kubernetes_asyncio.client import CoreV1Api

    store.create(named("before", {"component": "singleuser-server"}))

    async def body(api):
        core = CoreV1Api(api)
        seen = []

        async def write_later():
            await asyncio.sleep(0.2)
            store.create(named("p", {"component": "singleuser-server"}))
            store.create(named("other", {"component": "hub"}))
            store.patch("Pod", "p", NS, {"status": {"phase": "Running"}}, subresource="status")
            store.patch("Pod", "p", NS, {"metadata": {"labels": {"component": "gone"}}})

        writer = asyncio.ensure_future(write_later())
        async with watch.Watch().stream(
            core.list_namespaced_pod, NS, label_selector="component=singleuser-server", timeout_seconds=2
        ) as stream:
            async for event in stream:
                seen.append((event["type"], event["object"].metadata.name))
                if len(seen) == 4:
                    break
        await writer
        return seen

    assert with_clients(store, body) == [
        ("ADDED", "before"),  # a watch from resourceVersion 0 starts with what exists
        ("ADDED", "p"),
        ("MODIFIED", "p"),
        ("DELETED", "p"),  # its labels left the selection
    ]


def test_watch_resumes_from_a_resource_version_and_too_old_is_gone():
    from kubernetes_asyncio import watch
    from kubernetes_asyncio.client import CoreV1Api
    from kubernetes_asyncio.client.exceptions import ApiException

    store = ObjectStore(history=5)
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    first = store.create(named("a"))
    mark = first["metadata"]["resourceVersion"]
    store.create(named("b"))
    store.delete("Pod", "a", NS)

    async def resumed(api):
        core = CoreV1Api(api)
        events = []
        async with watch.Watch().stream(
            core.list_namespaced_pod, NS, resource_version=mark, timeout_seconds=1
        ) as stream:
            async for event in stream:
                events.append((event["type"], event["object"].metadata.name))
        return events

    assert with_clients(store, resumed) == [("ADDED", "b"), ("DELETED", "a")]
    for number in range(6):
        store.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{number}", "namespace": NS}}
        )

    async def too_old(api):
        core = CoreV1Api(api)
        try:
            async with watch.Watch().stream(
                core.list_namespaced_pod, NS, resource_version=mark, timeout_seconds=1
            ) as stream:
                async for _ in stream:
                    pass
        except ApiException as error:
            return error

    error = with_clients(store, too_old)
    assert error.status == 410 and "Expired" in error.reason


def test_kubespawners_reflectors_follow_pods_and_events(store):
    from kubernetes_asyncio.client import Configuration
    from kubespawner.reflector import ResourceReflector
    from kubespawner.spawner import EventReflector, PodReflector

    class Reflectors:
        pods: ResourceReflector
        events: ResourceReflector

    async def body():
        saved = Configuration.get_default_copy()
        async with serving_api(store) as url:
            configuration = Configuration.get_default_copy()
            configuration.host = url
            Configuration.set_default(configuration)
            try:
                pods = PodReflector(
                    namespace=NS, labels={"component": "singleuser-server"}, timeout_seconds=1
                )
                events = EventReflector(namespace=NS, fields={"involvedObject.kind": "Pod"})
                await pods.start()
                await events.start()
                store.create(named("jupyter-ann", {"component": "singleuser-server"}))
                store.create(named("hub", {"component": "hub"}))
                await eventually(lambda: f"{NS}/jupyter-ann" in pods.pods)
                store.create(
                    {
                        "apiVersion": "v1",
                        "kind": "Event",
                        "metadata": {"name": "jupyter-ann.1", "namespace": NS},
                        "involvedObject": {"kind": "Pod", "name": "jupyter-ann", "namespace": NS},
                        "reason": "FailedScheduling",
                        "message": "0/1 nodes are available",
                        "lastTimestamp": "2026-11-21T09:00:00Z",
                    }
                )
                await eventually(lambda: events.events)
                store.delete("Pod", "jupyter-ann", NS)
                await eventually(lambda: f"{NS}/jupyter-ann" not in pods.pods)
                await asyncio.sleep(1.5)  # past timeout_seconds: the reflector resumes its watch
                store.create(named("jupyter-bob", {"component": "singleuser-server"}))
                await eventually(lambda: f"{NS}/jupyter-bob" in pods.pods)
                found = sorted(pods.pods), [e["reason"] for e in events.events]
                await pods.stop()
                await events.stop()
                return found
            finally:
                Configuration.set_default(saved)

    assert asyncio.run(body()) == ([f"{NS}/jupyter-bob"], ["FailedScheduling"])


def test_dask_gateways_informer_follows_daskclusters_of_its_crd(store, tmp_path):
    from dask_gateway_server.backends.kubernetes.utils import Informer
    from kubernetes_asyncio.client import CustomObjectsApi

    for crd in chart_crds(tmp_path):
        store.register_crd(crd)
    updates, deletes = [], []

    async def body(api):
        informer = Informer(
            name="cluster",
            client=CustomObjectsApi(api),
            method="list_cluster_custom_object",
            method_kwargs=dict(
                group="gateway.dask.org",
                version="v1alpha1",
                plural="daskclusters",
                label_selector="gateway.dask.org/instance=gw",
            ),
            on_update=lambda obj, old=None: updates.append((obj["metadata"]["name"], old is None)),
            on_delete=lambda obj: deletes.append(obj["metadata"]["name"]),
            timeout_seconds=1,
        )
        store.create(daskcluster("before"))
        await informer.start()
        store.create(daskcluster("c1"))
        store.patch(
            "DaskCluster",
            "c1",
            NS,
            [{"op": "add", "path": "/status", "value": {"phase": "Running"}}],
            "json",
            "status",
        )
        await eventually(lambda: len(updates) >= 3)
        await asyncio.sleep(1.2)  # the informer's watch ends and resumes from its resourceVersion
        store.delete("DaskCluster", "c1", NS)
        await eventually(lambda: deletes)
        state = informer.get(f"{NS}.before")["metadata"]["name"]
        await informer.stop()
        return state

    assert with_clients(store, body) == "before"
    assert updates == [("before", True), ("c1", True), ("c1", False)] and deletes == ["c1"]


def test_the_dynamic_client_discovers_gets_and_patches_as_kubernetes_core_does(store, tmp_path):
    from kubernetes import client
    from kubernetes.dynamic import DynamicClient

    for crd in chart_crds(tmp_path):
        store.create(crd)
    store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "platform", "namespace": NS}})
    server = ApiServer(store)
    with serving_in_thread(server.app()) as url:
        configuration = client.Configuration()
        configuration.host = url
        configuration.api_key = {"authorization": "Bearer any-token"}
        dynamic = DynamicClient(client.ApiClient(configuration), cache_file=str(tmp_path / "discovery.json"))
        configmaps = dynamic.resources.get(api_version="v1", kind="ConfigMap")
        got = configmaps.get(name="platform", namespace=NS)
        configmaps.patch(
            body={"data": {"platform.yaml": "x: 1"}},
            name="platform",
            namespace=NS,
            content_type="application/merge-patch+json",
        )
        clusters = dynamic.resources.get(api_version="gateway.dask.org/v1alpha1", kind="DaskCluster")
        clusters.create(body=daskcluster("c1"), namespace=NS)
        listed = clusters.get(namespace=NS)
        statefulsets = dynamic.resources.get(api_version="apps/v1", kind="StatefulSet")
    assert got.metadata.name == "platform" and [i.metadata.name for i in listed.items] == ["c1"]
    assert store.get("ConfigMap", "platform", NS)["data"] == {"platform.yaml": "x: 1"}
    assert set(statefulsets.subresources) == {"status", "scale"}
    assert {r.authorization for r in server.requests} == {"Bearer any-token"}
    assert {"/version", "/apis", "/api/v1", "/apis/gateway.dask.org/v1alpha1"} <= {
        r.path for r in server.requests
    }
