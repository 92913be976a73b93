"""The meter's Kubernetes source through kubernetes_asyncio, against a stand-in API server.

A kube-apiserver cannot run here. The stand-in serves the core/v1 list endpoints the
meter calls (pods and persistentvolumeclaims in a namespace, nodes) with the objects of
data/eks_objects.json wrapped as the API's PodList/NodeList/PersistentVolumeClaimList,
and applies equality label selectors as the API server does. So the real client code runs:
URLs, the label selector, deserialization and serialization back to plain objects.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from platform_tools.accounting.kubernetes_sources import SELECTOR, KubernetesSources
from platform_tools.accounting.sources import SourceError
from platform_tools.pricing.catalog import PriceCatalog
from tests.stand_in_server import serving

pytestmark = pytest.mark.integration

OBJECTS = json.loads((Path(__file__).parent / "data" / "eks_objects.json").read_text())
NAMESPACE = "parhelion"


def _selected(items: list[dict], selector: str | None) -> list[dict]:
    if not selector:
        return items
    wanted = dict(term.split("=", 1) for term in selector.split(","))
    return [
        i for i in items if all((i["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
    ]


class KubeApiStandIn:
    def __init__(self, fail: bool = False):
        self.fail = fail
        self.calls: list[tuple[str, str | None]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{ns}/pods", self.handler("PodList", "pods"))
        app.router.add_get(
            "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            self.handler("PersistentVolumeClaimList", "claims"),
        )
        app.router.add_get("/api/v1/nodes", self.handler("NodeList", "nodes"))
        return app

    def handler(self, kind: str, key: str):
        async def answer(request: web.Request) -> web.Response:
            selector = request.query.get("labelSelector")
            self.calls.append((request.path, selector))
            if self.fail:
                return web.json_response({"kind": "Status", "status": "Failure", "code": 503}, status=503)
            items = [
                i
                for i in OBJECTS[key]
                if i["metadata"].get("namespace", NAMESPACE) == request.match_info.get("ns", NAMESPACE)
            ]
            body = {
                "kind": kind,
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "4711"},
                "items": _selected(items, selector),
            }
            return web.json_response(body)

        return answer


async def _observe(stand_in: KubeApiStandIn):
    from kubernetes_asyncio.client import Configuration

    async with serving(stand_in.app()) as url:
        sources = KubernetesSources(NAMESPACE, PriceCatalog.load, configuration=Configuration(host=url))
        return await sources.observe()


def test_metered_pods_and_claims_are_read_through_the_api():
    stand_in = KubeApiStandIn()
    observations = asyncio.run(_observe(stand_in))
    assert sorted(stand_in.calls) == [
        ("/api/v1/namespaces/parhelion/persistentvolumeclaims", SELECTOR),
        ("/api/v1/namespaces/parhelion/pods", SELECTOR),
        ("/api/v1/nodes", None),
    ]
    by_key = {o.resource_key: o for o in observations}
    assert sorted(by_key) == [
        "pod:parhelion/dask-scheduler-5f1e:9a7e-2",
        "pod:parhelion/dask-worker-5f1e-abcde:77b1-3",
        "pod:parhelion/jupyter-ann-40example-2eorg:3c1b0f0e-1",
        "pvc:parhelion/claim-ann-40example-2eorg:c1-6",
    ]
    server = by_key["pod:parhelion/jupyter-ann-40example-2eorg:3c1b0f0e-1"]
    od = PriceCatalog.load().node("m6i.xlarge", "us-west-2", "on-demand").price_per_hour
    assert server.username == "ann@example.org"
    assert server.rate_per_hour == pytest.approx(0.25 * od)
    assert server.started_at == pytest.approx(1795251605.0)  # a datetime after the client's round trip


def test_an_api_that_does_not_answer_skips_the_sample():
    with pytest.raises(SourceError, match="kubernetes API: .*503"):
        asyncio.run(_observe(KubeApiStandIn(fail=True)))
