"""`parhelion class prewarm NAME --kubernetes`: the class read from the chart's platform
ConfigMap, the placeholders' StatefulSet sized to its profile and scaled to its roster.

A kube-apiserver cannot run here: the rehearsal's API stand-in (tests/rehearsal/apiserver.py)
holds the ConfigMap and the StatefulSet the chart renders, and applies the strategic merge
PATCH (its pod template's containers merged by name, as the API server does)."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.platform import REPO_ROOT, run_parhelion
from tests.rehearsal.apiserver import ApiServer, ObjectStore
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


class Cluster:
    """The API stand-in with the platform ConfigMap and the rendered placeholders."""

    def __init__(self, statefulset: dict):
        self.store = ObjectStore()
        self.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        self.store.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "parhelion-platform", "namespace": NAMESPACE},
                "data": {"platform.yaml": platform_text()},
            }
        )
        self.store.create(
            copy.deepcopy(statefulset) | {"metadata": {**statefulset["metadata"], "namespace": NAMESPACE}}
        )
        self.server = ApiServer(self.store)

    @property
    def statefulset(self) -> dict:
        return self.store.get("StatefulSet", "parhelion-placeholder", NAMESPACE)


def test_prewarm_then_stop(tmp_path, statefulset):
    api = Cluster(statefulset)
    with serving_in_thread(api.server.app()) as url:
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
        assert api.server.patches()[0].content_type == "application/strategic-merge-patch+json"
        done = run_parhelion(
            "class", "prewarm", "heliophysics-school", "--kubernetes", "--stop", "--kubeconfig", str(config)
        )
        assert done.returncode == 0 and api.statefulset["spec"]["replicas"] == 0


def test_an_unknown_class_is_named(tmp_path, statefulset):
    api = Cluster(statefulset)
    with serving_in_thread(api.server.app()) as url:
        done = run_parhelion(
            "class", "prewarm", "nope", "--kubernetes", "--kubeconfig", str(kubeconfig_for(tmp_path, url))
        )
    assert done.returncode == 1 and "no class 'nope'" in done.stderr and "heliophysics-school" in done.stderr
    assert not api.server.patches()
