"""`parhelion class prewarm NAME --kubernetes`: the class read from the chart's platform
ConfigMap, the placeholders' StatefulSet sized to its profile and scaled to its roster.

A kube-apiserver cannot run here: the stand-in serves GET of the ConfigMap and a strategic
merge PATCH of the StatefulSet (its pod template's containers merged by name, as the API
server does), starting from the StatefulSet the chart renders."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from aiohttp import web

from tests.platform import REPO_ROOT, run_parhelion
from tests.stand_in_server import kubeconfig_for, serving_in_thread

pytestmark = pytest.mark.integration
NAMESPACE = "parhelion"


def platform_text() -> str:
    prod = yaml.safe_load((REPO_ROOT / "helm" / "parhelion" / "examples" / "prod.yaml").read_text())
    school = prod["platform"]["groups"]["heliophysics-school"]
    school["course"] = {
        "title": "Heliophysics school",
        "sessions": ["09:00-12:00"],
        "timezone": "Europe/Paris",
    }
    prod["platform"]["profiles"]["small"] |= {"cpu_guarantee": 0.5, "mem_guarantee_gib": 2}  # not the chart's
    return yaml.safe_dump(prod["platform"], sort_keys=False)


def rendered_statefulset(tmp_path_factory) -> dict:
    """The placeholders' StatefulSet as the chart renders it (helm, the real dependencies)."""
    from tests.chart.charts import LOGIN, chart_copy, helm_in

    helm = helm_in(tmp_path_factory.mktemp("helm"))
    chart = chart_copy(tmp_path_factory.mktemp("chart"), helm)
    objects = yaml.safe_load_all(helm.template(chart, [LOGIN]))
    return next(
        o
        for o in objects
        if o and o["kind"] == "StatefulSet" and o["metadata"]["name"] == "parhelion-placeholder"
    )


@pytest.fixture(scope="module")
def statefulset(tmp_path_factory):
    return rendered_statefulset(tmp_path_factory)


class Api:
    def __init__(self, statefulset: dict):
        self.configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "parhelion-platform"},
            "data": {"platform.yaml": platform_text()},
        }
        self.statefulset = copy.deepcopy(statefulset)
        self.patches: list[tuple[str, dict]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(
            f"/api/v1/namespaces/{NAMESPACE}/configmaps/parhelion-platform", self.get_configmap
        )
        app.router.add_patch(
            f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/parhelion-placeholder", self.patch
        )
        return app

    async def get_configmap(self, request):
        return web.json_response(self.configmap)

    async def patch(self, request):
        body = json.loads(await request.text())
        self.patches.append((request.content_type, body))
        spec = body.get("spec", {})
        if "replicas" in spec:
            self.statefulset["spec"]["replicas"] = spec["replicas"]
        for change in spec.get("template", {}).get("spec", {}).get("containers", []):
            for container in self.statefulset["spec"]["template"]["spec"]["containers"]:
                if container["name"] == change["name"]:
                    container.update(copy.deepcopy({k: v for k, v in change.items() if k != "name"}))
        return web.json_response(self.statefulset)


def test_prewarm_then_stop(tmp_path, statefulset):
    api = Api(statefulset)
    with serving_in_thread(api.app()) as url:
        config = kubeconfig_for(tmp_path, url)
        done = run_parhelion(
            "class", "prewarm", "heliophysics-school", "--kubernetes", "--kubeconfig", str(config)
        )
        assert done.returncode == 0, done.stderr
        assert "2 placeholders of 0.5 CPU and 2Gi" in done.stdout
        container = api.statefulset["spec"]["template"]["spec"]["containers"][0]
        assert api.statefulset["spec"]["replicas"] == 2  # the roster
        assert container["resources"]["requests"] == {"cpu": "0.5", "memory": "2Gi"}  # the small profile
        assert api.statefulset["spec"]["selector"]["matchLabels"]  # the rest of the object kept
        assert container["image"].endswith(":2026.11.0")  # untouched by the merge
        assert api.patches[0][0] == "application/strategic-merge-patch+json"
        done = run_parhelion(
            "class", "prewarm", "heliophysics-school", "--kubernetes", "--stop", "--kubeconfig", str(config)
        )
        assert done.returncode == 0 and api.statefulset["spec"]["replicas"] == 0


def test_an_unknown_class_is_named(tmp_path, statefulset):
    api = Api(statefulset)
    with serving_in_thread(api.app()) as url:
        done = run_parhelion(
            "class", "prewarm", "nope", "--kubernetes", "--kubeconfig", str(kubeconfig_for(tmp_path, url))
        )
    assert done.returncode == 1 and "no class 'nope'" in done.stderr and "heliophysics-school" in done.stderr
    assert not api.patches
