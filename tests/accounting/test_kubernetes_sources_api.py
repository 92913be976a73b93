"""The meter's Kubernetes source through kubernetes_asyncio, against the API stand-in.

A kube-apiserver cannot run here. The rehearsal's API stand-in (tests/rehearsal/apiserver.py)
holds the objects of data/eks_objects.json (pods and claims with the status their kubelet and
controllers wrote, nodes) and serves the core/v1 lists the meter calls with their label
selectors. So the real client code runs: URLs, the label selector, deserialization and
serialization back to plain objects.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from platform_tools.accounting.kubernetes_sources import SELECTOR, KubernetesSources
from platform_tools.accounting.sources import SourceError
from platform_tools.ledger.store import CLUSTER_OWNER
from platform_tools.pricing.catalog import PriceCatalog
from tests.rehearsal.apiserver import ApiError, ApiServer, ObjectStore, seed, serving_api

pytestmark = pytest.mark.integration

OBJECTS = json.loads((Path(__file__).parent / "data" / "eks_objects.json").read_text())
NAMESPACE = "parhelion"


def recorded_cluster(unavailable: bool = False, refuse=None) -> ApiServer:
    """The API stand-in with the recorded objects; ``unavailable``: every request gets a 503;
    ``refuse``: the stand-in's hook answering some requests with an error."""
    store = ObjectStore()
    seed(store, OBJECTS["nodes"], "Node")
    seed(store, OBJECTS["pods"], "Pod", namespace=NAMESPACE)
    seed(store, OBJECTS["claims"], "PersistentVolumeClaim", namespace=NAMESPACE)
    overloaded = ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request")
    return ApiServer(store, refuse=(lambda request: overloaded) if unavailable else refuse)


async def _observe(server: ApiServer):
    from kubernetes_asyncio.client import Configuration

    async with serving_api(server) as url:
        sources = KubernetesSources(NAMESPACE, PriceCatalog.load, configuration=Configuration(host=url))
        return await sources.observe()


def resource_key(store: ObjectStore, kind: str, name: str) -> str:
    """The meter's key for an object: kind, namespace, name and the uid the API gave it."""
    prefix = {"Pod": "pod", "PersistentVolumeClaim": "pvc"}[kind]
    return f"{prefix}:{NAMESPACE}/{name}:{store.get(kind, name, NAMESPACE)['metadata']['uid']}"


def test_metered_pods_and_claims_are_read_through_the_api():
    api = recorded_cluster()
    observations = asyncio.run(_observe(api))
    # every namespace's pods, once: users' (this namespace's metered ones), placeholders and
    # system pods (capacity); the claims by the selector
    assert sorted((r.path, r.query.get("labelSelector")) for r in api.requests) == [
        ("/api/v1/namespaces/parhelion/persistentvolumeclaims", SELECTOR),
        ("/api/v1/nodes", None),
        ("/api/v1/pods", None),
    ]
    by_key = {o.resource_key: o for o in observations if not o.capacity}
    store = api.store
    ann = resource_key(store, "Pod", "jupyter-ann-40example-2eorg")
    assert sorted(by_key) == sorted(
        [
            resource_key(store, "Pod", "dask-scheduler-5f1e"),
            resource_key(store, "Pod", "dask-worker-5f1e-abcde"),
            ann,
            resource_key(store, "PersistentVolumeClaim", "claim-ann-40example-2eorg"),
        ]
    )
    server = by_key[ann]
    od = PriceCatalog.load().node("m6i.xlarge", "us-west-2", "on-demand").price_per_hour
    assert server.username == "ann@example.org"
    assert server.rate_per_hour == pytest.approx(0.25 * od)
    assert server.started_at == pytest.approx(1795251605.0)  # a datetime after the client's round trip

    # capacity: every node at its price, and the hub (unmetered) as a system pod; none a user's
    capacity = {o.resource_key.split(":")[0] + ":" + o.description: o for o in observations if o.capacity}
    assert sorted(capacity) == [
        "node:m6i.large on-demand",
        "node:m6i.xlarge on-demand",
        "node:r6i.2xlarge spot",
        "system:parhelion/hub-6d5c9",
    ]
    assert {o.username for o in capacity.values()} == {CLUSTER_OWNER}
    assert capacity["node:m6i.xlarge on-demand"].rate_per_hour == pytest.approx(od)
    assert capacity["system:parhelion/hub-6d5c9"].node == "ip-10-0-3-7.us-west-2.compute.internal"


def test_pods_of_every_namespace_forbidden_still_records_nodes(caplog):
    """A chart from before the meter listed every namespace's pods: the sample is recorded, with
    nodes (their system pods then count as idle), and the one warning says why."""
    forbidden = ApiError(403, "Forbidden", 'pods is forbidden: cannot list "pods" at the cluster scope')
    api = recorded_cluster(refuse=lambda request: forbidden if request.path == "/api/v1/pods" else None)
    observations = asyncio.run(_observe(api))
    assert ("/api/v1/namespaces/parhelion/pods", SELECTOR) in [
        (r.path, r.query.get("labelSelector")) for r in api.requests
    ]
    assert len([o for o in observations if not o.capacity]) == 4
    assert sorted(o.kind for o in observations if o.capacity) == ["node", "node", "node"]
    assert "system pods are counted as idle" in caplog.text


def test_an_api_that_does_not_answer_skips_the_sample():
    with pytest.raises(SourceError, match="kubernetes API: .*503"):
        asyncio.run(_observe(recorded_cluster(unavailable=True)))
