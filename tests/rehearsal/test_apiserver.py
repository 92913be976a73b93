"""The API stand-in answers the real clients as kube-apiserver does.

Each test drives a client the rehearsal's processes use (kubernetes_asyncio as KubeSpawner and
dask-gateway use it, the synchronous kubernetes DynamicClient as kubernetes.core uses it,
KubeSpawner's reflectors, dask-gateway's informer) against ``ApiServer`` over HTTP, and reads
the outcome back from the ``ObjectStore`` or through the same client.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.rehearsal.apiserver import ApiError, ApiServer, ObjectStore, serving_api

pytestmark = pytest.mark.rehearsal
NS = "hub"


def pod(name: str, labels: dict | None = None, node: str | None = None) -> dict:
    spec = {
        "containers": [{"name": "notebook", "image": "jupyter/base:1", "ports": [{"containerPort": 8888}]}]
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


def statefulset(name: str, replicas: int = 1) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "serviceName": name,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "pause", "image": "pause:3", "resources": {}}]},
            },
        },
    }


@pytest.fixture
def store() -> ObjectStore:
    store = ObjectStore()
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return store


def with_clients(store_or_server, body):
    """Run ``body(api_client)`` with a kubernetes_asyncio ApiClient of the served stand-in."""
    from kubernetes_asyncio.client import ApiClient, Configuration

    async def run():
        async with serving_api(store_or_server) as url, ApiClient(Configuration(host=url)) as api:
            return await body(api)

    return asyncio.run(run())


def test_core_objects_round_trip_through_kubernetes_asyncio(store):
    from kubernetes_asyncio.client import CoreV1Api
    from kubernetes_asyncio.client.exceptions import ApiException

    async def body(api):
        core = CoreV1Api(api)
        created = await core.create_namespaced_pod(NS, pod("jupyter-ann", {"component": "singleuser-server"}))
        again = None
        try:
            await core.create_namespaced_pod(NS, pod("jupyter-ann"))
        except ApiException as error:
            again = error
        read = await core.read_namespaced_pod("jupyter-ann", NS)
        missing = None
        try:
            await core.read_namespaced_pod("nobody", NS)
        except ApiException as error:
            missing = error
        cm = {"metadata": {"name": "settings"}, "data": {"a": "1"}}
        await core.create_namespaced_config_map(NS, cm)
        listed = await core.list_namespaced_config_map(NS)
        return created, again, read, missing, listed

    created, again, read, missing, listed = with_clients(store, body)
    assert created.metadata.uid and created.metadata.resource_version and created.status.phase == "Pending"
    assert again.status == 409 and '"reason":"AlreadyExists"' in again.body.replace(" ", "")
    assert read.metadata.uid == created.metadata.uid and read.spec.containers[0].name == "notebook"
    assert missing.status == 404 and "NotFound" in missing.body
    assert [c.metadata.name for c in listed.items] == ["settings"]
    assert int(listed.metadata.resource_version) == store.resource_version
    assert store.get("Pod", "jupyter-ann", NS)["metadata"]["labels"] == {"component": "singleuser-server"}


def test_every_patch_type_and_the_unsupported_apply(store):
    from kubernetes_asyncio.client import AppsV1Api
    from kubernetes_asyncio.client.exceptions import ApiException

    store.create(statefulset("placeholder", replicas=0))
    server = ApiServer(store)

    async def body(api):
        apps = AppsV1Api(api)
        containers = [{"name": "pause", "resources": {"requests": {"cpu": "500m"}}}]
        strategic = {"spec": {"replicas": 2, "template": {"spec": {"containers": containers}}}}
        await apps.patch_namespaced_stateful_set("placeholder", NS, strategic)
        await api.call_api(
            f"/apis/apps/v1/namespaces/{NS}/statefulsets/placeholder",
            "PATCH",
            header_params={"Content-Type": "application/merge-patch+json", "Accept": "application/json"},
            body={"metadata": {"labels": {"tier": "warm"}}},
        )
        await apps.patch_namespaced_stateful_set(
            "placeholder", NS, [{"op": "replace", "path": "/spec/serviceName", "value": "warm"}]
        )
        failed_test = applied = None
        try:
            await apps.patch_namespaced_stateful_set(
                "placeholder", NS, [{"op": "test", "path": "/spec/replicas", "value": 7}]
            )
        except ApiException as error:
            failed_test = error
        try:
            await api.call_api(
                f"/apis/apps/v1/namespaces/{NS}/statefulsets/placeholder",
                "PATCH",
                header_params={"Content-Type": "application/apply-patch+yaml"},
                body={"spec": {"replicas": 1}},
            )
        except ApiException as error:
            applied = error
        return failed_test, applied

    failed_test, applied = with_clients(server, body)
    assert [p.content_type for p in server.patches()][:3] == [
        "application/strategic-merge-patch+json",
        "application/merge-patch+json",
        "application/json-patch+json",
    ]
    sts = store.get("StatefulSet", "placeholder", NS)
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert container == {"name": "pause", "image": "pause:3", "resources": {"requests": {"cpu": "500m"}}}
    assert sts["spec"]["replicas"] == 2 and sts["spec"]["serviceName"] == "warm"
    assert sts["metadata"]["labels"] == {"tier": "warm"}
    assert sts["metadata"]["generation"] == 3  # the spec changed twice; the label did not count
    assert failed_test.status == 422 and applied.status == 415


def test_strategic_merge_deletes_by_name_and_merges_conditions_by_type(store):
    store.create(pod("p", node="n1") | {"metadata": {"name": "p", "namespace": NS}})
    store.patch(
        "Pod",
        "p",
        NS,
        {"spec": {"containers": [{"name": "sidecar", "image": "x"}]}},
        patch_type="strategic",
    )
    store.patch(
        "Pod", "p", NS, {"spec": {"containers": [{"name": "notebook", "$patch": "delete"}]}}, "strategic"
    )
    assert [c["name"] for c in store.get("Pod", "p", NS)["spec"]["containers"]] == ["sidecar"]
    ready = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    scheduled = {"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}
    for change in (ready, scheduled, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}):
        store.patch("Pod", "p", NS, change, "strategic", subresource="status")
    conditions = store.get("Pod", "p", NS)["status"]["conditions"]
    assert conditions == [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]


def test_replace_with_a_stale_resource_version_conflicts(store):
    from kubernetes_asyncio.client import CoreV1Api
    from kubernetes_asyncio.client.exceptions import ApiException

    async def body(api):
        core = CoreV1Api(api)
        await core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}, "data": {"k": "1"}})
        first = await core.read_namespaced_config_map("cm", NS)
        second = await core.read_namespaced_config_map("cm", NS)
        first.data = {"k": "2"}
        await core.replace_namespaced_config_map("cm", NS, first)
        second.data = {"k": "3"}
        try:
            await core.replace_namespaced_config_map("cm", NS, second)
        except ApiException as error:
            return error

    error = with_clients(store, body)
    assert error.status == 409 and "the object has been modified" in error.body
    assert store.get("ConfigMap", "cm", NS)["data"] == {"k": "2"}
    with pytest.raises(ApiError) as conflict:
        stale = store.get("ConfigMap", "cm", NS)
        store.patch("ConfigMap", "cm", NS, {"data": {"k": "4"}})
        store.replace(stale)
    assert conflict.value.code == 409 and conflict.value.reason == "Conflict"


def test_a_write_that_changes_nothing_keeps_the_resource_version(store):
    created = store.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": NS}}
    )
    same = store.patch("ConfigMap", "c", NS, {"data": None})
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    changed = store.patch("ConfigMap", "c", NS, {"data": {"a": "b"}})
    assert int(changed["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


def test_dry_run_answers_but_does_not_persist(store):
    from kubernetes_asyncio.client import CoreV1Api

    server = ApiServer(store)
    store.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": NS}, "data": {}}
    )

    async def body(api):
        core = CoreV1Api(api)
        patched = await core.patch_namespaced_config_map("c", NS, {"data": {"x": "1"}}, dry_run="All")
        made = await core.create_namespaced_config_map(NS, {"metadata": {"name": "d"}}, dry_run="All")
        await core.delete_namespaced_config_map("c", NS, dry_run="All")
        return patched, made

    patched, made = with_clients(server, body)
    assert patched.data == {"x": "1"} and made.metadata.name == "d"
    assert store.get("ConfigMap", "c", NS)["data"] == {} and store.get("ConfigMap", "d", NS) is None
    assert [r.dry_run for r in server.requests] == [True, True, True]


def test_status_subresource_splits_status_from_spec(store):
    from kubernetes_asyncio.client import AppsV1Api

    store.create(statefulset("web", replicas=1))

    async def body(api):
        apps = AppsV1Api(api)
        await apps.patch_namespaced_stateful_set(
            "web", NS, {"status": {"replicas": 9}, "spec": {"replicas": 3}}
        )
        await apps.patch_namespaced_stateful_set_status(
            "web", NS, {"status": {"replicas": 3, "readyReplicas": 2}, "spec": {"replicas": 5}}
        )
        return await apps.read_namespaced_stateful_set_status("web", NS)

    read = with_clients(store, body)
    assert read.spec.replicas == 3 and read.status.replicas == 3 and read.status.ready_replicas == 2
    assert store.get("StatefulSet", "web", NS)["metadata"]["generation"] == 2  # status writes do not count


def test_scale_subresource_reads_and_writes_replicas(store):
    from kubernetes_asyncio.client import AppsV1Api

    store.create(statefulset("web", replicas=1))

    async def body(api):
        apps = AppsV1Api(api)
        before = await apps.read_namespaced_stateful_set_scale("web", NS)
        await apps.patch_namespaced_stateful_set_scale("web", NS, {"spec": {"replicas": 4}})
        return before, await apps.read_namespaced_stateful_set_scale("web", NS)

    before, after = with_clients(store, body)
    assert before.spec.replicas == 1 and before.status.selector == "app=web"
    assert after.spec.replicas == 4 and store.get("StatefulSet", "web", NS)["spec"]["replicas"] == 4


def test_label_and_field_selectors(store):
    from kubernetes_asyncio.client import CoreV1Api

    for name, labels, node in (
        ("a", {"component": "singleuser-server", "user": "ann"}, "n1"),
        ("b", {"component": "singleuser-server", "user": "bob"}, None),
        ("c", {"component": "hub"}, None),
    ):
        store.create(
            pod(name, labels, node) | {"metadata": {"name": name, "namespace": NS, "labels": labels}}
        )
    store.patch("Pod", "c", NS, {"status": {"phase": "Running"}}, subresource="status")

    async def body(api):
        core = CoreV1Api(api)

        async def names(**selectors):
            return [p.metadata.name for p in (await core.list_namespaced_pod(NS, **selectors)).items]

        return {
            "in": await names(label_selector="user in (ann,bob)"),
            "notin": await names(label_selector="user notin (ann)"),
            "exists": await names(label_selector="user"),
            "not exists": await names(label_selector="!user"),
            "and": await names(label_selector="component=singleuser-server,user!=ann"),
            "phase": await names(field_selector="status.phase=Running"),
            "name": await names(field_selector="metadata.name!=a"),
            "everywhere": [p.metadata.name for p in (await core.list_pod_for_all_namespaces()).items],
        }

    assert with_clients(store, body) == {
        "in": ["a", "b"],
        "notin": ["b", "c"],
        "exists": ["a", "b"],
        "not exists": ["c"],
        "and": ["b"],
        "phase": ["c"],
        "name": ["b", "c"],
        "everywhere": ["a", "b", "c"],
    }
    assert [p["metadata"]["name"] for p in store.list("Pod", NS, fields="spec.nodeName=")] == ["b", "c"]
    assert [p["metadata"]["name"] for p in store.list("Pod", labels={"user": "ann"})] == ["a"]


def test_names_and_labels_are_validated(store):
    with pytest.raises(ApiError) as bad_name:
        store.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1hub", "namespace": NS}})
    with pytest.raises(ApiError) as bad_label:
        store.create(
            pod("p") | {"metadata": {"name": "p", "namespace": NS, "labels": {"user": "ann@example.org"}}}
        )
    with pytest.raises(ApiError) as no_namespace:
        store.create(pod("p") | {"metadata": {"name": "p", "namespace": "nowhere"}})
    assert (bad_name.value.code, bad_label.value.code, no_namespace.value.code) == (422, 422, 404)
    made = store.create(pod("x") | {"metadata": {"generateName": "dask-worker-", "namespace": NS}})
    assert made["metadata"]["name"].startswith("dask-worker-") and len(made["metadata"]["name"]) == 17
