"""The API stand-in's object lifecycle: deletion as kube-apiserver and its garbage collector
do it (grace periods for bound pods, finalizers, owner references, namespaces), CRDs that add
kinds, and helm's install order."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from tests.rehearsal.apiserver import ApiError, ObjectStore
from tests.rehearsal.test_apiserver import NS, pod, statefulset, with_clients

pytestmark = pytest.mark.rehearsal
DASK_GATEWAY_CHART = "/work/shared/charts/dask-gateway-2026.3.0.tgz"


@pytest.fixture
def store() -> ObjectStore:
    store = ObjectStore()
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return store


def chart_crds(tmp_path) -> list[dict]:
    """The CRDs dask-gateway's chart installs (DaskCluster, traefik's), from the real chart."""
    import tarfile

    # extraction filters arrived in 3.11.4; Debian 12's Python, which `make` may pick, is 3.11.2
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(DASK_GATEWAY_CHART) as chart:
        chart.extractall(tmp_path, **safe)
    found = []
    for path in sorted((tmp_path / "dask-gateway" / "crds").glob("*.yaml")):
        found.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return found


def daskcluster(name: str) -> dict:
    return {
        "apiVersion": "gateway.dask.org/v1alpha1",
        "kind": "DaskCluster",
        "metadata": {"name": name, "namespace": NS, "labels": {"gateway.dask.org/instance": "gw"}},
        "spec": {"scheduler": {"template": {}}, "worker": {"template": {}, "replicas": 0}},
    }


def test_a_bound_pod_waits_for_its_kubelet_an_unbound_one_goes_at_once(store):
    events = store.subscribe()
    store.create(pod("bound", node="node-1") | {"metadata": {"name": "bound", "namespace": NS}})
    store.create(pod("unbound") | {"metadata": {"name": "unbound", "namespace": NS}})
    marked = store.delete("Pod", "bound", NS)
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert store.get("Pod", "bound", NS) is not None
    store.patch("Pod", "bound", NS, {"status": {"phase": "Succeeded"}}, subresource="status")
    assert store.get("Pod", "bound", NS) is not None  # a status write is no confirmation
    store.delete("Pod", "unbound", NS)
    assert store.get("Pod", "unbound", NS) is None
    store.delete("Pod", "bound", NS, grace=False)  # the kubelet: the containers are gone
    assert store.get("Pod", "bound", NS) is None and store.delete("Pod", "bound", NS) is None
    seen = []
    while not events.empty():
        kind, obj = events.get_nowait()
        seen.append((kind, obj["metadata"]["name"]))
    assert seen == [
        ("ADDED", "bound"),
        ("ADDED", "unbound"),
        ("MODIFIED", "bound"),
        ("MODIFIED", "bound"),
        ("DELETED", "unbound"),
        ("DELETED", "bound"),
    ]


def test_grace_period_zero_over_http_removes_a_bound_pod(store):
    from kubernetes_asyncio.client import CoreV1Api, V1DeleteOptions

    store.create(pod("bound", node="node-1") | {"metadata": {"name": "bound", "namespace": NS}})

    async def body(api):
        core = CoreV1Api(api)
        await core.delete_namespaced_pod("bound", NS, body=V1DeleteOptions(grace_period_seconds=0))

    with_clients(store, body)
    assert store.get("Pod", "bound", NS) is None


def test_finalizers_hold_an_object_until_they_are_removed(store):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "namespace": NS}}
    cm["metadata"]["finalizers"] = ["parhelion.dev/archive"]
    store.create(cm)
    marked = store.delete("ConfigMap", "held", NS)
    assert marked["metadata"]["deletionTimestamp"] and store.get("ConfigMap", "held", NS) is not None
    store.patch("ConfigMap", "held", NS, {"data": {"still": "writable"}})
    store.patch("ConfigMap", "held", NS, {"metadata": {"finalizers": None}})
    assert store.get("ConfigMap", "held", NS) is None


def test_owners_take_their_dependents_with_them_unless_orphaned(store):
    owner = store.create(statefulset("web"))
    reference = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "web",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    for name in ("web-0", "web-1"):
        store.create(
            pod(name) | {"metadata": {"name": name, "namespace": NS, "ownerReferences": [reference]}}
        )
    other = store.create(statefulset("other"))
    two_owners = [reference, {**reference, "name": "other", "uid": other["metadata"]["uid"]}]
    store.create(
        pod("shared") | {"metadata": {"name": "shared", "namespace": NS, "ownerReferences": two_owners}}
    )
    store.delete("StatefulSet", "web", NS)
    assert [p["metadata"]["name"] for p in store.list("Pod", NS)] == ["shared"]  # one owner left
    store.create(
        pod("kept") | {"metadata": {"name": "kept", "namespace": NS, "ownerReferences": two_owners[1:]}}
    )
    store.delete("StatefulSet", "other", NS, propagation="Orphan")
    kept = store.get("Pod", "kept", NS)
    assert kept is not None and kept["metadata"]["ownerReferences"] == []


def test_a_deleted_namespace_terminates_with_its_content(store):
    store.create(pod("p") | {"metadata": {"name": "p", "namespace": NS}})
    store.create(pod("b", node="n1") | {"metadata": {"name": "b", "namespace": NS}})
    store.delete("Namespace", NS)
    assert store.get("Namespace", NS)["status"]["phase"] == "Terminating"
    assert store.get("Pod", "p", NS) is None and store.get("Pod", "b", NS)["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError) as refused:
        store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late", "namespace": NS}})
    assert refused.value.code == 403
    store.delete("Pod", "b", NS, grace=False)
    assert store.get("Namespace", NS) is None


def test_a_crd_from_the_dask_gateway_chart_adds_its_kind(store, tmp_path):
    from kubernetes_asyncio.client import CustomObjectsApi
    from kubernetes_asyncio.client.exceptions import ApiException

    for crd in chart_crds(tmp_path):
        store.create(crd)
    established = store.get("CustomResourceDefinition", "daskclusters.gateway.dask.org")
    assert {c["type"] for c in established["status"]["conditions"]} >= {"Established"}

    async def body(api):
        custom = CustomObjectsApi(api)
        args = ("gateway.dask.org", "v1alpha1", NS, "daskclusters")
        await custom.create_namespaced_custom_object(*args, daskcluster("c1") | {"status": {"phase": "X"}})
        merge = "application/merge-patch+json"  # a dict body is sent as a JSON patch by default
        await custom.patch_namespaced_custom_object(
            *args, "c1", {"spec": {"worker": {"replicas": 2}}}, _content_type=merge
        )
        await custom.patch_namespaced_custom_object_status(  # as dask-gateway's controller does it
            *args, "c1", [{"op": "add", "path": "/status", "value": {"phase": "Running"}}]
        )
        listed = await custom.list_namespaced_custom_object(
            *args, label_selector="gateway.dask.org/instance=gw"
        )
        await custom.delete_namespaced_custom_object(*args, "c1")
        try:
            await custom.get_namespaced_custom_object(*args, "c1")
        except ApiException as error:
            return listed, error.status

    listed, after_delete = with_clients(store, body)
    (cluster,) = listed["items"]
    assert cluster["spec"]["worker"]["replicas"] == 2 and cluster["status"] == {"phase": "Running"}
    assert cluster["metadata"]["generation"] == 2 and after_delete == 404
    store.create(daskcluster("c2"))
    store.delete("CustomResourceDefinition", "daskclusters.gateway.dask.org")
    with pytest.raises(ApiError):
        store.list("DaskCluster")


def test_load_installs_in_helms_order(store, tmp_path):
    events = store.subscribe()
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hub"}, "spec": {"ports": []}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "hub"}}
    test_hook = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "test-connection", "annotations": {"helm.sh/hook": "test"}},
    }
    cluster = daskcluster("from-chart")
    del cluster["metadata"]["namespace"]
    crds = chart_crds(tmp_path)
    store.load([service, None, cluster, test_hook, account, statefulset("placeholder"), *crds], "prod")
    order = []
    while not events.empty():
        kind, obj = events.get_nowait()
        order.append(obj["kind"])
    assert order[0] == "Namespace" and set(order[1 : 1 + len(crds)]) == {"CustomResourceDefinition"}
    assert order[1 + len(crds) :] == ["ServiceAccount", "Service", "StatefulSet", "DaskCluster"]
    assert (
        store.get("DaskCluster", "from-chart", "prod") and store.get("Pod", "test-connection", "prod") is None
    )


def test_subscribers_get_copies_they_cannot_change_the_store_with(store):
    async def body():
        events = store.subscribe()
        store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": NS}})
        kind, obj = await asyncio.wait_for(events.get(), 1)
        obj["metadata"]["name"] = "changed"
        store.unsubscribe(events)
        store.patch("ConfigMap", "c", NS, {"data": {"a": "b"}})
        return kind, events.empty()

    assert asyncio.run(body()) == ("ADDED", True)
    got = store.get("ConfigMap", "c", NS)
    got["data"]["a"] = "mutated"
    assert store.get("ConfigMap", "c", NS)["data"] == {"a": "b"}
