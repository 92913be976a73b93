"""deploy.yml renders the chart's values from the inventory and validates platform.yaml with
`parhelion config validate` before anything is applied. No cluster can run here, so the
render-only mode runs for real and the real helm renders the chart with those values (with the
real dependency charts, tests/chart/charts.py); the install step itself is kubernetes.core.helm's."""

from __future__ import annotations

import json

import pytest
import yaml

from platform_tools.config import parse_platform
from tests.ansible.runner import ANSIBLE_DIR, run_playbook
from tests.chart.charts import chart_copy, helm_in

pytestmark = pytest.mark.ansible
INVENTORY = ANSIBLE_DIR / "inventories" / "aws-example"


def render(tmp_path, **extra_vars):
    out = tmp_path / "rendered"
    run = run_playbook(
        "deploy.yml",
        tmp_path / "home",
        inventory=INVENTORY,
        extra_vars={
            "parhelion_chart_render_only": True,
            "parhelion_chart_render_dir": str(out),
            **extra_vars,
        },
    )
    return run, out


def test_the_inventory_renders_a_chart_that_helm_accepts(tmp_path):
    run, out = render(tmp_path)
    assert run.returncode == 0, "\n".join(run.failures()) or run.stderr
    inventory = yaml.safe_load((INVENTORY / "group_vars" / "parhelion.yml").read_text())
    platform = parse_platform((out / "platform.yaml").read_text())
    assert platform.groups["researchers"].quota.max_dask_cores == 200
    assert set(platform.profiles) == set(inventory["parhelion_chart_platform"]["profiles"])

    helm = helm_in(tmp_path / "helm")
    chart = chart_copy(tmp_path, helm)
    rendered = [d for d in yaml.safe_load_all(helm.template(chart, [out / "values.yaml"])) if d]
    configmap = next(
        d for d in rendered if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "parhelion-platform"
    )
    assert parse_platform(configmap["data"]["platform.yaml"]) == platform
    pools = [d for d in rendered if d["kind"] == "EC2NodeClass"]
    assert pools[0]["spec"]["role"] == "parhelion-node"  # the node role provision.yml makes
    # what Karpenter launches carries the inventory's tags: parhelion.dev/cluster for cost allocation
    assert pools[0]["spec"]["tags"] == inventory["parhelion_tags"]


def test_a_bad_platform_stops_before_anything_is_applied(tmp_path):
    groups = {
        "researchers": {"members": ["ana"], "profiles": ["huge"], "budget": {"usd": 5, "period": "month"}}
    }
    run, out = render(tmp_path, platform_config_groups=groups)
    assert run.returncode != 0
    failure = "\n".join(run.failures())
    assert "Stop on an invalid platform.yaml" in failure and "groups.researchers.profiles" in failure, failure
    assert not (out / "values.yaml").exists()


def test_a_missing_region_is_named(tmp_path):
    run, _ = render(tmp_path, aws_region="")
    assert run.returncode != 0
    assert "aws_region is not a region" in "\n".join(run.failures())


def test_the_login_is_rendered_and_its_secret_never_written(tmp_path):
    """The inventory's identity provider and HTTPS reach the chart (which refuses a hub without
    them), while the client secret goes only to its Secret: never into values.yaml,
    platform.yaml or Ansible's output."""
    secret = "gho-client-secret-value-7f3a"
    run, out = render(tmp_path, parhelion_chart_oauth_client_secret=secret)
    assert run.returncode == 0, "\n".join(run.failures()) or run.stderr
    values = yaml.safe_load((out / "values.yaml").read_text())
    assert values["platform"]["hub"]["auth"]["type"] == "github"
    assert values["jupyterhub"]["proxy"]["https"]["hosts"] == ["hub.example.org"]
    for path in out.rglob("*"):
        assert not path.is_file() or secret not in path.read_text(), path
    assert secret not in json.dumps(run.report) + run.stderr
