"""quotas.yml's Kubernetes path (inventories/aws-example's target): kubernetes.core reads the
chart's platform ConfigMap, the validated change is patched into it.

A kube-apiserver cannot run here. The stand-in answers what the kubernetes client asks for
these calls: version and API discovery (core/v1 with configmaps), GET of a ConfigMap and a
merge PATCH of it, applied as the API server applies it. The ConfigMap starts as the chart
renders it from examples/prod.yaml.
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from aiohttp import web

from platform_tools.config import parse_platform
from tests.ansible.runner import ANSIBLE_DIR, run_playbook
from tests.platform import REPO_ROOT
from tests.stand_in_server import kubeconfig_for, serving_in_thread

pytestmark = pytest.mark.ansible
INVENTORY = ANSIBLE_DIR / "inventories" / "aws-example"
NAMESPACE, NAME = "parhelion", "parhelion-platform"


def _merge(target: dict, patch: dict) -> dict:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class ConfigMapApi:
    def __init__(self, platform_text: str):
        self.configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": NAME,
                "namespace": NAMESPACE,
                "resourceVersion": "1",
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
            },
            "data": {"platform.yaml": platform_text},
        }
        self.patches: list[dict] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/version", self.version)
        app.router.add_get("/api", self.api)
        app.router.add_get("/apis", self.apis)
        app.router.add_get("/api/v1", self.resources)
        path = "/api/v1/namespaces/{ns}/configmaps/{name}"
        app.router.add_get(path, self.get)
        app.router.add_patch(path, self.patch)
        return app

    async def version(self, request):
        return web.json_response({"major": "1", "minor": "33", "gitVersion": "v1.33.0"})

    async def api(self, request):
        return web.json_response(
            {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        )

    async def apis(self, request):
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

    async def resources(self, request):
        configmaps = {
            "name": "configmaps",
            "singularName": "configmap",
            "namespaced": True,
            "kind": "ConfigMap",
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            "shortNames": ["cm"],
        }
        return web.json_response({"kind": "APIResourceList", "groupVersion": "v1", "resources": [configmaps]})

    def _found(self, request) -> bool:
        return (request.match_info["ns"], request.match_info["name"]) == (NAMESPACE, NAME)

    async def get(self, request):
        if not self._found(request):
            return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
        return web.json_response(self.configmap)

    async def patch(self, request):
        if not self._found(request):
            return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
        patch = json.loads(await request.text())
        self.patches.append(
            {"content-type": request.content_type, "body": patch, "dryRun": request.query.get("dryRun")}
        )
        if request.query.get("dryRun"):
            return web.json_response(_merge(copy.deepcopy(self.configmap), patch))
        before = json.dumps(self.configmap["data"], sort_keys=True)
        _merge(self.configmap, patch)
        if json.dumps(self.configmap["data"], sort_keys=True) != before:
            version = int(self.configmap["metadata"]["resourceVersion"]) + 1
            self.configmap["metadata"]["resourceVersion"] = str(version)
        return web.json_response(self.configmap)


@pytest.fixture
def api():
    prod = yaml.safe_load((REPO_ROOT / "helm" / "parhelion" / "examples" / "prod.yaml").read_text())
    return ConfigMapApi(yaml.safe_dump(prod["platform"], sort_keys=False))


def run(tmp_path, url: str, **extra_vars):
    kubeconfig = kubeconfig_for(tmp_path, url)
    return run_playbook(
        "quotas.yml",
        tmp_path / "home",
        inventory=INVENTORY,
        extra_vars={"platform_config_kubeconfig": str(kubeconfig), **extra_vars},
    )


def test_quotas_patch_the_configmap_and_a_second_run_changes_nothing(api, tmp_path):
    researchers = {
        "members": ["ana", "ben", "cy"],
        "profiles": ["small", "large"],
        "quota": {"max_servers": 2, "max_dask_clusters": 2, "max_dask_cores": 64},
        "budget": {"usd": 500, "period": "month"},
    }
    with serving_in_thread(api.app()) as url:
        first = run(tmp_path, url, platform_config_groups={"researchers": researchers})
        assert first.returncode == 0, "\n".join(first.failures()) or first.stderr
        assert first.changed >= 1 and api.configmap["metadata"]["resourceVersion"] == "2"
        deployed = parse_platform(api.configmap["data"]["platform.yaml"])
        # the inventory's researchers replaced the chart's; the summer school group is kept
        assert deployed.groups["researchers"].members == ["ana", "ben", "cy"]
        assert deployed.groups["researchers"].quota.max_dask_cores == 64
        assert deployed.groups["heliophysics-school"].budget.group_usd == 3000
        assert api.configmap["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "Helm"}
        version = api.configmap["metadata"]["resourceVersion"]

        second = run(tmp_path, url, platform_config_groups={"researchers": researchers})
        assert second.returncode == 0 and second.changed == 0
        assert api.configmap["metadata"]["resourceVersion"] == version


def test_an_invalid_change_leaves_the_configmap_alone(api, tmp_path):
    before = copy.deepcopy(api.configmap)
    groups = {
        "researchers": {"members": ["ana"], "profiles": ["huge"], "budget": {"usd": 5, "period": "month"}}
    }
    with serving_in_thread(api.app()) as url:
        result = run(tmp_path, url, platform_config_groups=groups)
    assert result.returncode != 0
    assert "groups.researchers.profiles" in "\n".join(result.failures())
    assert api.configmap == before and not [p for p in api.patches if not p["dryRun"]]
