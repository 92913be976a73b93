"""Pod manifests made by KubeSpawner itself (no API server needed) from platform.yaml, for each
profile and group: resources, node placement, image, and what the meter selects pods by."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from platform_tools.config import parse_platform
from platform_tools.contract.labels import KIND, METERED, USER
from platform_tools.hub.kubernetes import configure_kubernetes_hub, prepare_spawner, profile_list
from tests.auth import CLIENT_SECRET, with_oidc

pytestmark = pytest.mark.unit

GROUPS = """
groups:
  researchers:
    members: [demo, ann@example.org]
    profiles: [small, medium]
    quota: {max_servers: 1, storage_gib: 25}
  class:
    members: [student1]
    profiles: [small]
    quota: {max_servers: 1, storage_gib: 5}
"""


class FakeLive:
    path = "/etc/parhelion/platform/platform.yaml"

    def __init__(self, config):
        self.config = config

    def current(self):
        return self.config


@pytest.fixture
def platform(example_text):
    start = example_text.index("\ngroups:\n")
    end = example_text.index("\n# Per-user exceptions")
    return with_oidc(parse_platform(example_text[:start] + GROUPS + example_text[end:]))


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def manifest(platform, username: str, profile: str | None, monkeypatch, tmp_path) -> dict:
    """KubeSpawner loads a client configuration when it is made, and never calls the API to
    build manifests: a kubeconfig naming an unreachable server satisfies it."""
    from kubernetes_asyncio.config import kube_config
    from kubespawner import KubeSpawner

    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))
    monkeypatch.setenv("PARHELION_ACCOUNTING_TOKEN", "t")
    monkeypatch.setenv(*next(iter(CLIENT_SECRET.items())))
    c = Config()
    configure_kubernetes_hub(c, FakeLive(platform))
    user = SimpleNamespace(name=username, id=1, url=f"/user/{username}/", spawners={})

    async def build() -> dict:
        spawner = KubeSpawner(_mock=True, config=c, user=user)
        spawner.user_options = {"profile": profile} if profile else {}
        await spawner.load_user_options()
        prepare_spawner(spawner, platform)
        pod = await spawner.get_pod_manifest()
        pvc = spawner.get_pvc_manifest()
        return {"pod": pod.to_dict(), "pvc": pvc.to_dict(), "capacity": spawner.storage_capacity}

    return asyncio.run(build())


@pytest.mark.parametrize(
    ("username", "profile", "expected"),
    [("demo", "small", "small"), ("demo", "medium", "medium"), ("student1", None, "small")],
)
def test_pods_follow_the_profile(platform, monkeypatch, tmp_path, username, profile, expected):
    built = manifest(platform, username, profile, monkeypatch, tmp_path)
    pod = built["pod"]
    chosen = platform.profiles[expected]
    container = pod["spec"]["containers"][0]
    resources = container["resources"]
    assert float(resources["requests"]["cpu"]) == chosen.cpu_guarantee
    assert float(resources["limits"]["cpu"]) == chosen.cpu_limit
    assert resources["requests"]["memory"] == chosen.mem_guarantee_gib * 2**30  # KubeSpawner's G is GiB
    assert resources["limits"]["memory"] == chosen.mem_limit_gib * 2**30
    assert pod["metadata"]["labels"]["parhelion.dev/profile"] == expected
    assert container["image"] == platform.images["helio"]
    assert pod["spec"]["node_selector"] == {"parhelion.dev/pool": "users"}
    assert not pod["spec"].get("tolerations")  # never on the spot Dask pool
    security = container["security_context"]
    assert security.get("allowPrivilegeEscalation", security.get("allow_privilege_escalation")) is False, (
        security
    )
    pod_security = pod["spec"]["security_context"]
    assert pod_security.get("fsGroup", pod_security.get("fs_group")) == 1000
    assert security.get("runAsUser", security.get("run_as_user")) == 1000


def test_pods_and_homes_carry_what_the_meter_selects(platform, monkeypatch, tmp_path):
    built = manifest(platform, "ann@example.org", "small", monkeypatch, tmp_path)
    meta = built["pod"]["metadata"]
    assert meta["labels"][METERED] == "true" and meta["labels"][KIND] == "server"
    assert meta["annotations"][USER] == "ann@example.org"  # the real name; labels cannot hold '@'
    pvc = built["pvc"]["metadata"]
    assert pvc["labels"][METERED] == "true" and pvc["labels"][KIND] == "home"
    assert pvc["annotations"][USER] == "ann@example.org"
    assert built["pvc"]["spec"]["resources"]["requests"]["storage"] == "25Gi"  # the group's storage quota
    assert built["capacity"] == "25Gi"


def test_the_class_gets_only_its_profile_and_its_smaller_home(platform, monkeypatch, tmp_path):
    assert [p["slug"] for p in profile_list(platform, "student1")] == ["small"]
    assert [p["slug"] for p in profile_list(platform, "demo")] == ["small", "medium"]
    assert "$0.024/hour" in profile_list(platform, "demo")[0]["display_name"]
    assert manifest(platform, "student1", None, monkeypatch, tmp_path)["capacity"] == "5Gi"


def test_servers_get_the_archive_and_the_gateway_with_no_arguments(platform, monkeypatch, tmp_path):
    pod = manifest(platform, "demo", "small", monkeypatch, tmp_path)["pod"]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["PARHELION_ARCHIVE"] == "s3://helio-sample"
    assert env["DASK_GATEWAY__ADDRESS"] == "http://proxy-public/services/dask-gateway"
    assert env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    # burst plans ask what is left of the budget through the proxy, as the gateway is reached
    assert env["PARHELION_ACCOUNTING_ADDRESS"] == "http://proxy-public"


def test_servers_get_jupyterlabs_dask_settings_as_the_daskhub_chart_sets_them(
    platform, monkeypatch, tmp_path
):
    """The dashboard link template reaches the pod with its braces (KubeSpawner formats every
    value), so dask fills in the server's prefix; the Dask panel's + NEW makes gateway clusters;
    gateway dashboards are linked at the hub's public origin (the identity provider's callback
    host), which dask-labextension needs (it resolves a root-relative link under the server)."""
    pod = manifest(platform, "demo", "small", monkeypatch, tmp_path)["pod"]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["DASK_DISTRIBUTED__DASHBOARD__LINK"] == "{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status"
    assert env["DASK_LABEXTENSION__FACTORY__MODULE"] == "dask_gateway"
    assert env["DASK_LABEXTENSION__FACTORY__CLASS"] == "GatewayCluster"
    origin = platform.hub.auth.callback_url.split("/hub/")[0]
    assert env["DASK_GATEWAY__PUBLIC_ADDRESS"] == f"{origin}/services/dask-gateway/"
    without = platform.model_copy(
        update={"dask_gateway": platform.dask_gateway.model_copy(update={"enabled": False})}
    )
    pod = manifest(without, "demo", "small", monkeypatch, tmp_path)["pod"]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert "DASK_LABEXTENSION__FACTORY__MODULE" not in env  # + NEW: upstream's LocalCluster
    assert env["DASK_DISTRIBUTED__DASHBOARD__LINK"] == "{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status"


def test_json_in_the_environment_reaches_the_pod_unchanged(platform, monkeypatch, tmp_path):
    """KubeSpawner expands environment values as str.format templates: fsspec's options for an
    anonymous archive (JSON, with braces) once made every spawn fail with KeyError '"anon"' on EKS, where the
    default archive is a public, anonymous bucket."""
    from platform_tools.config.models import Archive

    sdo = Archive(bucket="gov-nasa-hdrl-data1", access="anonymous", default=True)
    platform = platform.model_copy(update={"archives": {"sdo": sdo}})
    pod = manifest(platform, "demo", "small", monkeypatch, tmp_path)["pod"]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert json.loads(env["FSSPEC_S3"]) == {"anon": True}


def test_the_culler_follows_platform_yaml(platform):
    from platform_tools.hub.kubernetes import cull_timeout

    z2jh = {
        "name": "jupyterhub-idle-culler",
        "command": ["python3", "-m", "jupyterhub_idle_culler", "--timeout=3600", "--cull-every=600"],
    }
    culled = cull_timeout(z2jh, platform.hub.cull_idle_servers_after_minutes * 60)
    assert culled["command"][-1] == "--timeout=3600" and culled["command"].count("--cull-every=600") == 1
    assert cull_timeout(z2jh, 900)["command"][-1] == "--timeout=900"
    other = {"name": "accounting", "url": "http://x"}
    assert cull_timeout(other, 900) == other


def test_shared_scratch_is_mounted_when_the_chart_makes_it(platform, monkeypatch, tmp_path):
    monkeypatch.setenv("PARHELION_SCRATCH_CLAIM", "parhelion-scratch")
    pod = manifest(platform, "demo", "small", monkeypatch, tmp_path)["pod"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    claim = volumes["scratch"].get("persistentVolumeClaim") or volumes["scratch"]["persistent_volume_claim"]
    assert claim.get("claimName", claim.get("claim_name")) == "parhelion-scratch"
    mounts = {
        m["name"]: m.get("mountPath", m.get("mount_path"))
        for m in pod["spec"]["containers"][0]["volume_mounts"]
    }
    assert mounts == {"home": "/home/jovyan", "scratch": "/scratch"}


def test_a_class_runs_its_own_image_until_it_closes(platform, monkeypatch, tmp_path):
    """A course's image replaces the profile's in its students' pods; closed, it no longer does
    (and its members can no longer log in)."""
    images = dict(platform.images)
    other = next(iter(images.values())).rsplit(":", 1)[0] + ":2027.06.0"
    data = platform.model_dump(mode="json", exclude_none=True)
    data["images"]["school"] = other
    data["groups"]["class"]["budget"] = {
        "usd": 15,
        "period": "course",
        "course": {"start": "2027-06-14", "end": "2027-06-25"},
    }
    data["groups"]["class"]["course"] = {
        "title": "Heliophysics school",
        "sessions": ["09:00-12:00"],
        "image": "school",
    }
    school = parse_platform(json.dumps(data))
    pod = manifest(school, "student1", None, monkeypatch, tmp_path)["pod"]
    assert pod["spec"]["containers"][0]["image"] == other
    assert "student1" in school.allowed_users
    data["groups"]["class"]["course"]["status"] = "closed"
    closed = parse_platform(json.dumps(data))
    assert "student1" not in closed.allowed_users
    assert profile_list(closed, "student1")[0]["kubespawner_override"]["image"] != other
