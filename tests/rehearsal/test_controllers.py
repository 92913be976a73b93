"""The stand-in controller-manager and scheduler turn a chart's objects into bound pods,
counted replicas and endpoints, on the same store the API stand-in serves."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.rehearsal.apiserver import ObjectStore, serving_api
from tests.rehearsal.controllers import ControllerManager
from tests.rehearsal.test_apiserver import NS, statefulset

pytestmark = pytest.mark.rehearsal
SAFE = "[bcdfghjklmnpqrstvwxz2456789]"


def node(name: str, labels: dict | None = None, taints: list | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or []},
    }


def deployment(name: str, replicas: int = 1, image: str = "hub:1") -> dict:
    labels = {"component": name}
    container = {"name": name, "image": image, "ports": [{"name": "http", "containerPort": 8081}]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def start_pods(store: ObjectStore, ready: bool = True) -> None:
    """What a kubelet reports for the pods bound to its node (the process kubelet's job)."""
    for number, pod in enumerate(store.list("Pod", NS)):
        if pod["spec"].get("nodeName") and not pod["metadata"].get("deletionTimestamp"):
            status = {
                "phase": "Running",
                "podIP": f"10.1.0.{number + 10}",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            }
            store.patch("Pod", pod["metadata"]["name"], NS, {"status": status}, "strategic", "status")


def names(store: ObjectStore, kind: str = "Pod") -> list[str]:
    return [o["metadata"]["name"] for o in store.list(kind, NS)]


@pytest.fixture
def store() -> ObjectStore:
    store = ObjectStore()
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    store.create(node("node-a"))
    return store


async def over_http(store: ObjectStore, call):
    """``call(api_client)`` through kubernetes_asyncio and the API stand-in, on the running loop."""
    from kubernetes_asyncio.client import ApiClient, Configuration

    async with serving_api(store) as url, ApiClient(Configuration(host=url)) as api:
        return await call(api)


def run(store: ObjectStore, steps) -> object:
    async def body():
        async with ControllerManager(store) as manager:
            return await steps(manager)

    return asyncio.run(body())


def test_a_statefulset_gets_ordinal_pods_scaled_from_the_top_and_replaced(store):
    async def steps(manager):
        store.create(statefulset("placeholder", replicas=3))
        await manager.idle()
        made = names(store)
        pod = store.get("Pod", "placeholder-1", NS)
        start_pods(store)
        await manager.idle()
        counted = store.get("StatefulSet", "placeholder", NS)["status"]
        store.patch("StatefulSet", "placeholder", NS, {"spec": {"replicas": 1}})
        await manager.idle()
        terminating = [
            p["metadata"]["name"] for p in store.list("Pod", NS) if p["metadata"].get("deletionTimestamp")
        ]
        for name in terminating:
            store.delete("Pod", name, NS, grace=False)  # the kubelet stopped them
        store.delete("Pod", "placeholder-0", NS, grace=False)  # lost: replaced
        await manager.idle()
        return made, pod, counted, terminating

    made, pod, counted, terminating = run(store, steps)
    assert made == ["placeholder-0", "placeholder-1", "placeholder-2"]
    assert pod["metadata"]["labels"]["app"] == "placeholder"
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "placeholder-1"
    (owner,) = pod["metadata"]["ownerReferences"]
    assert owner["kind"] == "StatefulSet" and owner["controller"] is True
    assert pod["spec"]["nodeName"] == "node-a" and pod["spec"]["hostname"] == "placeholder-1"
    assert counted["replicas"] == counted["readyReplicas"] == counted["availableReplicas"] == 3
    assert terminating == ["placeholder-1", "placeholder-2"]
    assert (
        names(store) == ["placeholder-0"]
        and store.get("Pod", "placeholder-0", NS)["status"]["phase"] == "Pending"
    )


def test_a_deployment_names_its_pods_and_replaces_them_when_the_template_changes(store):
    from kubernetes_asyncio.client import AppsV1Api

    async def steps(manager):
        store.create(deployment("hub"))
        await manager.idle()
        first = names(store)
        store.patch("Deployment", "hub", NS, {"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}})
        await manager.idle()
        for pod in store.list("Pod", NS):
            if pod["metadata"].get("deletionTimestamp"):
                store.delete("Pod", pod["metadata"]["name"], NS, grace=False)
        await manager.idle()
        second = names(store)

        async def scale(api):
            await AppsV1Api(api).patch_namespaced_deployment_scale("hub", NS, {"spec": {"replicas": 3}})

        await over_http(store, scale)
        await manager.idle()
        return first, second, names(store)

    first, second, scaled = run(store, steps)
    pattern = re.compile(rf"^hub-{SAFE}{{10}}-{SAFE}{{5}}$")
    assert len(first) == 1 and pattern.match(first[0])
    assert len(second) == 1 and second[0] != first[0] and pattern.match(second[0])
    assert first[0].split("-")[1] != second[0].split("-")[1]  # a new template hash
    assert len(scaled) == 3 and all(n.split("-")[1] == second[0].split("-")[1] for n in scaled)
    assert store.get("Pod", second[0], NS)["metadata"]["labels"] == {
        "component": "hub",
        "v": "2",
        "pod-template-hash": second[0].split("-")[1],
    }


def test_an_unschedulable_pod_is_told_why_and_bound_when_a_node_fits(store):
    store.patch(
        "Node",
        "node-a",
        None,
        {"spec": {"taints": [{"key": "hub.jupyter.org/dedicated", "value": "core", "effect": "NoSchedule"}]}},
    )
    store.create(node("node-b", {"hub.jupyter.org/node-purpose": "core"}))
    user_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-ann", "namespace": NS},
        "spec": {
            "containers": [{"name": "notebook", "image": "x"}],
            "nodeSelector": {"hub.jupyter.org/node-purpose": "user"},
            "tolerations": [
                {
                    "key": "hub.jupyter.org/dedicated",
                    "operator": "Equal",
                    "value": "user",
                    "effect": "NoSchedule",
                }
            ],
        },
    }

    async def steps(manager):
        store.create(user_pod)
        await manager.idle()
        waiting = store.get("Pod", "jupyter-ann", NS)
        events = store.list("Event", NS, fields="involvedObject.name=jupyter-ann")
        store.create(
            node(
                "node-c",
                {"hub.jupyter.org/node-purpose": "user"},
                [{"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NoSchedule"}],
            )
        )
        await manager.idle()
        return waiting, events, store.get("Pod", "jupyter-ann", NS)

    waiting, events, bound = run(store, steps)
    (condition,) = waiting["status"]["conditions"]
    assert condition["type"] == "PodScheduled" and condition["status"] == "False"
    assert condition["reason"] == "Unschedulable"
    (event,) = events
    assert event["reason"] == "FailedScheduling" and event["type"] == "Warning"
    assert event["involvedObject"]["uid"] == waiting["metadata"]["uid"]
    assert event["message"].startswith(
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {hub.jupyter.org/dedicated: core}."
    )
    assert bound["spec"]["nodeName"] == "node-c"
    assert {"type": "PodScheduled", "status": "True"}.items() <= bound["status"]["conditions"][0].items()


def test_required_node_affinity_and_the_least_loaded_node(store):
    store.create(node("node-b", {"karpenter.sh/capacity-type": "spot"}))
    store.create(node("node-c", {"karpenter.sh/capacity-type": "on-demand"}))
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "karpenter.sh/capacity-type", "operator": "NotIn", "values": ["spot"]},
                            {"key": "karpenter.sh/capacity-type", "operator": "Exists"},
                        ]
                    }
                ]
            }
        }
    }

    def worker(name: str, with_affinity: bool) -> dict:
        spec = {"containers": [{"name": "w", "image": "x"}]} | (
            {"affinity": affinity} if with_affinity else {}
        )
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS}, "spec": spec}

    async def steps(manager):
        for number in range(3):
            store.create(worker(f"spread-{number}", False))
            await manager.idle()
        store.create(worker("on-demand", True))
        await manager.idle()

    run(store, steps)
    placed = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in store.list("Pod", NS)}
    assert sorted(placed[f"spread-{n}"] for n in range(3)) == ["node-a", "node-b", "node-c"]
    assert placed["on-demand"] == "node-c"


def test_endpoints_follow_the_services_pods(store):
    from kubernetes_asyncio.client import CoreV1Api

    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "hub", "namespace": NS, "labels": {"app": "jupyterhub"}},
        "spec": {
            "selector": {"component": "hub"},
            "ports": [{"name": "hub", "port": 8081, "targetPort": "http"}],
        },
    }

    async def steps(manager):
        store.create(service)
        store.create(deployment("hub", replicas=2))
        await manager.idle()
        start_pods(store, ready=False)
        await manager.idle()
        unready = store.get("Endpoints", "hub", NS)
        start_pods(store, ready=True)
        await manager.idle()

        async def read(api):
            return await CoreV1Api(api).read_namespaced_endpoints("hub", NS)

        ready = await over_http(store, read)
        store.delete("Service", "hub", NS)
        await manager.idle()
        return unready, ready

    unready, ready = run(store, steps)
    (subset,) = unready["subsets"]
    assert "addresses" not in subset and len(subset["notReadyAddresses"]) == 2
    assert subset["ports"] == [{"name": "hub", "port": 8081, "protocol": "TCP"}]
    assert unready["metadata"]["labels"] == {"app": "jupyterhub"}
    (subset,) = ready.subsets
    assert sorted(a.target_ref.name for a in subset.addresses) == names(store)
    assert all(a.ip.startswith("10.1.0.") for a in subset.addresses) and not subset.not_ready_addresses
    assert store.get("Endpoints", "hub", NS) is None


def test_stop_leaves_no_task_and_no_subscription(store):
    async def body():
        manager = ControllerManager(store)
        await manager.start()
        await manager.stop()
        store.create(statefulset("late"))
        await asyncio.sleep(0.05)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(body()) == [] and names(store) == []
