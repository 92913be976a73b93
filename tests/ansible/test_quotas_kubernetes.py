"""quotas.yml's Kubernetes path (inventories/aws-example's target): kubernetes.core reads the
chart's platform ConfigMap, the validated change is patched into it.

A kube-apiserver cannot run here. The rehearsal's API stand-in (tests/rehearsal/apiserver.py)
answers what kubernetes.core's client asks: version and API discovery, GET of the ConfigMap,
the dry-run PATCH kubernetes.core checks a change with and the PATCH itself, applied as the API
server applies them (a patch that changes nothing keeps the resourceVersion). The ConfigMap
starts as the chart renders it from examples/prod.yaml.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from platform_tools.config import parse_platform
from tests.ansible.runner import ANSIBLE_DIR, run_playbook
from tests.platform import REPO_ROOT
from tests.rehearsal.apiserver import ApiServer, ObjectStore
from tests.stand_in_server import kubeconfig_for, serving_in_thread

pytestmark = pytest.mark.ansible
INVENTORY = ANSIBLE_DIR / "inventories" / "aws-example"
NAMESPACE, NAME = "parhelion", "parhelion-platform"


class PlatformApi:
    """The API stand-in holding the chart's platform ConfigMap; its request log shows the patches."""

    def __init__(self, platform_text: str):
        self.store = ObjectStore()
        self.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        self.store.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": NAME,
                    "namespace": NAMESPACE,
                    "labels": {"app.kubernetes.io/managed-by": "Helm"},
                },
                "data": {"platform.yaml": platform_text},
            }
        )
        self.server = ApiServer(self.store)

    @property
    def configmap(self) -> dict:
        return self.store.get("ConfigMap", NAME, NAMESPACE)


@pytest.fixture
def api():
    prod = yaml.safe_load((REPO_ROOT / "helm" / "parhelion" / "examples" / "prod.yaml").read_text())
    return PlatformApi(yaml.safe_dump(prod["platform"], sort_keys=False))


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
    created = api.configmap["metadata"]["resourceVersion"]
    with serving_in_thread(api.server.app()) as url:
        first = run(tmp_path, url, platform_config_groups={"researchers": researchers})
        assert first.returncode == 0, "\n".join(first.failures()) or first.stderr
        assert first.changed >= 1 and api.configmap["metadata"]["resourceVersion"] != created
        (written,) = [p for p in api.server.patches() if not p.dry_run]  # checked by a dry run first
        assert written.body["data"] == {"platform.yaml": api.configmap["data"]["platform.yaml"]}
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
    with serving_in_thread(api.server.app()) as url:
        result = run(tmp_path, url, platform_config_groups=groups)
    assert result.returncode != 0
    assert "groups.researchers.profiles" in "\n".join(result.failures())
    assert api.configmap == before and not [p for p in api.server.patches() if not p.dry_run]
