"""`parhelion class close NAME --kubernetes` against a stand-in API server: the class closed
in the platform ConfigMap, its students' home claims (the recorded EKS objects the meter is
tested on) snapshotted and deleted as the course says, other claims untouched."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from platform_tools.config import parse_platform
from tests.platform import REPO_ROOT, run_parhelion
from tests.stand_in_server import kubeconfig_for, serving_in_thread

pytestmark = pytest.mark.integration
NS = "parhelion"
CLAIMS = json.loads((Path(__file__).parents[1] / "accounting" / "data" / "eks_objects.json").read_text())[
    "claims"
]


def platform_text(homes: str) -> str:
    prod = yaml.safe_load((REPO_ROOT / "helm" / "parhelion" / "examples" / "prod.yaml").read_text())
    school = prod["platform"]["groups"]["heliophysics-school"]
    school["members"].append("ann@example.org")
    school["course"] = {"sessions": ["09:00-12:00"], "homes": homes}
    return yaml.safe_dump(prod["platform"], sort_keys=False)


class Api:
    def __init__(self, homes: str):
        self.configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "parhelion-platform"},
            "data": {"platform.yaml": platform_text(homes)},
        }
        self.claims = {c["metadata"]["name"]: copy.deepcopy(c) for c in CLAIMS}
        self.snapshots: list[dict] = []
        self.selectors: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        cm = f"/api/v1/namespaces/{NS}/configmaps/parhelion-platform"
        app.router.add_get(cm, self.get_cm)
        app.router.add_patch(cm, self.patch_cm)
        app.router.add_get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims", self.list_claims)
        app.router.add_delete(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{{name}}", self.delete_claim)
        app.router.add_post(
            f"/apis/snapshot.storage.k8s.io/v1/namespaces/{NS}/volumesnapshots", self.snapshot
        )
        return app

    async def get_cm(self, request):
        return web.json_response(self.configmap)

    async def patch_cm(self, request):
        self.configmap["data"].update(json.loads(await request.text())["data"])
        return web.json_response(self.configmap)

    async def list_claims(self, request):
        selector = request.query.get("labelSelector", "")
        self.selectors.append(selector)
        wanted = dict(term.split("=", 1) for term in selector.split(",") if term)
        items = [
            c
            for c in self.claims.values()
            if all((c["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]
        return web.json_response(
            {"kind": "PersistentVolumeClaimList", "apiVersion": "v1", "metadata": {}, "items": items}
        )

    async def delete_claim(self, request):
        claim = self.claims.pop(request.match_info["name"], None)
        if claim is None:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        return web.json_response(claim)

    async def snapshot(self, request):
        body = json.loads(await request.text())
        self.snapshots.append(body)
        return web.json_response(body, status=201)


def close(tmp_path, url, *extra):
    return run_parhelion(
        "class",
        "close",
        "heliophysics-school",
        "--kubernetes",
        "--kubeconfig",
        str(kubeconfig_for(tmp_path, url)),
        *extra,
    )


def test_archive_snapshots_then_deletes_the_students_homes(tmp_path):
    api = Api("archive")
    with serving_in_thread(api.app()) as url:
        done = close(tmp_path, url, "--snapshot-class", "ebs-snapshots")
    assert done.returncode == 0, done.stderr
    closed = parse_platform(api.configmap["data"]["platform.yaml"])
    assert closed.groups["heliophysics-school"].closed and "ann@example.org" not in closed.allowed_users
    assert closed.groups["researchers"] == parse_platform(platform_text("archive")).groups["researchers"]
    assert api.selectors == ["parhelion.dev/metered=true,parhelion.dev/kind=home"]
    (snapshot,) = api.snapshots
    assert snapshot["spec"] == {
        "volumeSnapshotClassName": "ebs-snapshots",
        "source": {"persistentVolumeClaimName": "claim-ann-40example-2eorg"},
    }
    assert set(api.claims) == {"claim-bob"}  # not a student's home: untouched
    assert (
        "home claim-ann-40example-2eorg: snapshot claim-ann-40example-2eorg-heliophysics-school-final"
        in done.stdout
    )
    assert "give --hub-url" in done.stdout


def test_archive_needs_a_snapshot_class_and_changes_nothing_without(tmp_path):
    api = Api("archive")
    before = copy.deepcopy(api.configmap)
    with serving_in_thread(api.app()) as url:
        done = close(tmp_path, url)
    assert done.returncode == 1 and "give --snapshot-class" in done.stderr
    assert api.configmap == before and len(api.claims) == 2


def test_keep_leaves_homes(tmp_path):
    api = Api("keep")
    with serving_in_thread(api.app()) as url:
        done = close(tmp_path, url)
    assert done.returncode == 0, done.stderr
    assert len(api.claims) == 2 and not api.snapshots
    assert "home claim-ann-40example-2eorg: kept" in done.stdout
