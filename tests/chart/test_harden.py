"""The post-renderer adds what upstream charts lack and never overrides what they set."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from platform_tools.chart.harden import harden, harden_stream

pytestmark = pytest.mark.unit


def deployment(pod: dict | None = None, container: dict | None = None) -> dict:
    spec = {
        "containers": [{"name": "c", "image": "x:1", **({"securityContext": container} if container else {})}]
    }
    if pod is not None:
        spec["securityContext"] = pod
    return {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": spec}}}


def test_missing_settings_are_added():
    spec = harden(deployment())["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = spec["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}


def test_what_a_chart_sets_is_kept():
    spec = harden(
        deployment({"runAsUser": 65534, "fsGroup": 7}, {"runAsUser": 65534, "capabilities": {"add": ["X"]}})
    )
    pod = spec["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsUser"] == 65534 and pod["fsGroup"] == 7 and pod["runAsNonRoot"] is True
    context = spec["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert context["runAsUser"] == 65534 and context["capabilities"] == {"add": ["X"], "drop": ["ALL"]}


def test_root_on_purpose_is_left_to_the_checks():
    spec = harden(deployment({"runAsUser": 0}))["spec"]["template"]["spec"]
    assert "securityContext" not in spec["containers"][0]
    privileged = harden(deployment(None, {"privileged": True}))["spec"]["template"]["spec"]["containers"][0]
    assert privileged["securityContext"] == {"privileged": True}


def test_objects_without_pods_pass_unchanged():
    config = {"kind": "ConfigMap", "metadata": {"name": "m"}, "data": {"a": "b"}}
    assert harden_stream([config, None]) == [config]


def test_it_runs_as_helm_runs_it():
    """stdin to stdout, as the parhelion-harden plugin's command."""
    text = yaml.safe_dump_all([deployment(), {"kind": "Service", "metadata": {"name": "s"}}])
    done = subprocess.run(
        [sys.executable, "-m", "platform_tools.chart.harden"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    out = list(yaml.safe_load_all(done.stdout))
    assert out[0]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert out[1] == {"kind": "Service", "metadata": {"name": "s"}}


def test_an_unbounded_init_container_takes_the_bounds_of_its_images_container():
    """zero-to-jupyterhub's autohttps load-acme init container has no resources value; it runs
    the secret-sync sidecar's image, whose bounds it takes. Others are left alone."""
    bounds = {"requests": {"cpu": "10m"}, "limits": {"cpu": "100m", "memory": "128Mi"}}
    obj = deployment()
    spec = obj["spec"]["template"]["spec"]
    spec["containers"].append({"name": "secret-sync", "image": "sync:1", "resources": bounds})
    spec["initContainers"] = [
        {"name": "load-acme", "image": "sync:1"},
        {"name": "other", "image": "other:1"},
        {"name": "own", "image": "sync:1", "resources": {"limits": {"cpu": "1"}}},
    ]
    inits = {c["name"]: c for c in harden(obj)["spec"]["template"]["spec"]["initContainers"]}
    assert inits["load-acme"]["resources"] == bounds
    assert inits["load-acme"]["resources"] is not bounds  # a copy: YAML anchors stay out
    assert "resources" not in inits["other"]
    assert inits["own"]["resources"] == {"limits": {"cpu": "1"}}
