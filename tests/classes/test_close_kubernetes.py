"""`parhelion class close NAME --kubernetes` against the rehearsal's API stand-in: the class
closed in the platform ConfigMap, its students' home claims (the recorded EKS objects the meter
is tested on) snapshotted and deleted as the course says, other claims untouched."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from platform_tools.config import parse_platform
from tests.platform import REPO_ROOT, run_parhelion
from tests.rehearsal.apiserver import ApiServer, ObjectStore, seed
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


class Cluster:
    """The API stand-in with the platform ConfigMap and the recorded home claims."""

    def __init__(self, homes: str):
        self.store = ObjectStore()
        seed(self.store, CLAIMS, "PersistentVolumeClaim", namespace=NS)
        self.store.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "parhelion-platform", "namespace": NS},
                "data": {"platform.yaml": platform_text(homes)},
            }
        )
        self.server = ApiServer(self.store)

    @property
    def configmap(self) -> dict:
        return self.store.get("ConfigMap", "parhelion-platform", NS)

    @property
    def claims(self) -> list[str]:
        return [c["metadata"]["name"] for c in self.store.list("PersistentVolumeClaim", NS)]

    @property
    def snapshots(self) -> list[dict]:
        return self.store.list("VolumeSnapshot", NS)

    @property
    def selectors(self) -> list[str]:
        return [
            r.query.get("labelSelector", "")
            for r in self.server.requests
            if r.method == "GET" and r.path.endswith("/persistentvolumeclaims")
        ]


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
    api = Cluster("archive")
    with serving_in_thread(api.server.app()) as url:
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
    assert api.claims == ["claim-bob"]  # not a student's home: untouched
    assert (
        "home claim-ann-40example-2eorg: snapshot claim-ann-40example-2eorg-heliophysics-school-final"
        in done.stdout
    )
    assert "give --hub-url" in done.stdout


def test_archive_needs_a_snapshot_class_and_changes_nothing_without(tmp_path):
    api = Cluster("archive")
    before = copy.deepcopy(api.configmap)
    with serving_in_thread(api.server.app()) as url:
        done = close(tmp_path, url)
    assert done.returncode == 1 and "give --snapshot-class" in done.stderr
    assert api.configmap == before and len(api.claims) == 2


def test_keep_leaves_homes(tmp_path):
    api = Cluster("keep")
    with serving_in_thread(api.server.app()) as url:
        done = close(tmp_path, url)
    assert done.returncode == 0, done.stderr
    assert len(api.claims) == 2 and not api.snapshots
    assert "home claim-ann-40example-2eorg: kept" in done.stdout
