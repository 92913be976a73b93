"""`parhelion class close NAME --kubernetes` against the rehearsal's API stand-in: the class
closed in the platform ConfigMap, its students' home claims (the recorded EKS objects the meter
is tested on) snapshotted and deleted as the course says - each claim only once its snapshot
is ready, as a stand-in snapshot controller reports it after a delay the test sets - while
the claim of a TA who is also in another group, and every other claim, stays untouched."""

from __future__ import annotations

import asyncio
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
# A TA's home: ana is in the class's roster and in the researchers group, so she keeps access.
TA_CLAIM = {
    "metadata": {
        "name": "claim-ana",
        "labels": {"parhelion.dev/metered": "true", "parhelion.dev/kind": "home"},
        "annotations": {"parhelion.dev/user": "ana"},
    },
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}},
}


def platform_text(homes: str) -> str:
    prod = yaml.safe_load((REPO_ROOT / "helm" / "parhelion" / "examples" / "prod.yaml").read_text())
    school = prod["platform"]["groups"]["heliophysics-school"]
    school["members"] += ["ann@example.org", "ana"]
    school["course"] = {"sessions": ["09:00-12:00"], "homes": homes}
    return yaml.safe_dump(prod["platform"], sort_keys=False)


class SnapshotController:
    """Stands in for the CSI external-snapshotter: a new VolumeSnapshot reports readyToUse
    ``delay`` seconds after it is created (never, with None). Runs on the API stand-in's loop,
    as a store listener; ``log`` is the order of what happened: ("ready", snapshot, whether its
    claim still existed then) and ("deleted", claim)."""

    def __init__(self, store: ObjectStore, delay: float | None):
        self.store, self.delay = store, delay
        self.log: list[tuple] = []
        store.add_listener(self._changed)

    def _changed(self, change) -> None:
        kind, meta = change.obj["kind"], change.obj["metadata"]
        if kind == "VolumeSnapshot" and change.type == "ADDED" and self.delay is not None:
            asyncio.get_running_loop().call_later(self.delay, self.make_ready, meta["name"])
        if kind == "PersistentVolumeClaim" and change.type == "DELETED":
            self.log.append(("deleted", meta["name"]))

    def make_ready(self, name: str) -> None:
        snapshot = self.store.get("VolumeSnapshot", name, NS)
        claim = snapshot["spec"]["source"]["persistentVolumeClaimName"]
        self.log.append(("ready", name, self.store.get("PersistentVolumeClaim", claim, NS) is not None))
        status = {
            "readyToUse": True,
            "restoreSize": "5Gi",
            "boundVolumeSnapshotContentName": f"snapcontent-{name}",
        }
        self.store.patch("VolumeSnapshot", name, NS, {"status": status}, "merge", "status")


class Cluster:
    """The API stand-in with the platform ConfigMap and the recorded home claims."""

    def __init__(self, homes: str, snapshot_delay: float | None = 0.2):
        self.store = ObjectStore()
        seed(self.store, [*CLAIMS, TA_CLAIM], "PersistentVolumeClaim", namespace=NS)
        self.snapshotter = SnapshotController(self.store, snapshot_delay)
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
    assert api.claims == ["claim-ana", "claim-bob"]  # the TA keeps hers; bob's is no student's
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
    assert api.configmap == before and len(api.claims) == 3


def test_keep_leaves_homes(tmp_path):
    api = Cluster("keep")
    with serving_in_thread(api.server.app()) as url:
        done = close(tmp_path, url)
    assert done.returncode == 0, done.stderr
    assert len(api.claims) == 3 and not api.snapshots
    assert "home claim-ann-40example-2eorg: kept" in done.stdout


def test_a_home_claim_outlives_its_snapshot_until_the_snapshot_is_ready(tmp_path):
    """The claim is deleted only after the snapshot reports readyToUse (3 s after it was
    created), never right after the snapshot is created; the TA's home is not snapshotted."""
    api = Cluster("archive", snapshot_delay=3.0)
    with serving_in_thread(api.server.app()) as url:
        done = close(tmp_path, url, "--snapshot-class", "ebs-snapshots")
    assert done.returncode == 0, done.stderr
    snapshot = "claim-ann-40example-2eorg-heliophysics-school-final"
    assert api.snapshotter.log == [("ready", snapshot, True), ("deleted", "claim-ann-40example-2eorg")]
    assert "home claim-ana: kept (keeps access)" in done.stdout


def test_a_snapshot_not_ready_in_time_keeps_the_claim_and_close_finishes_when_run_again(tmp_path):
    api = Cluster("archive", snapshot_delay=None)  # the snapshot controller is stuck
    with serving_in_thread(api.server.app()) as url:
        done = close(tmp_path, url, "--snapshot-class", "ebs-snapshots", "--snapshot-timeout", "3")
    assert done.returncode == 1
    snapshot = "claim-ann-40example-2eorg-heliophysics-school-final"
    assert f"home snapshots not ready after 3 s: {snapshot} (claim claim-ann-40example-2eorg)" in done.stderr
    assert "Their claims are kept" in done.stderr
    assert "claim-ann-40example-2eorg" in api.claims  # not deleted
    assert parse_platform(api.configmap["data"]["platform.yaml"]).groups["heliophysics-school"].closed

    api.snapshotter.make_ready(snapshot)  # it finishes later; close is run again
    with serving_in_thread(api.server.app()) as url:
        again = close(tmp_path, url, "--snapshot-class", "ebs-snapshots", "--snapshot-timeout", "3")
    assert again.returncode == 0, again.stderr
    assert api.claims == ["claim-ana", "claim-bob"] and len(api.snapshots) == 1
    assert f"home claim-ann-40example-2eorg: snapshot {snapshot}" in again.stdout
