"""Closing a class on Kubernetes: `parhelion class close NAME --kubernetes`.

The same steps as on one machine, through the cluster's APIs: the class is marked closed in
the platform ConfigMap (members lose access as the hub re-reads it), running servers are
stopped through the hub's API, each student's home volume (found by the labels and owner
annotation the meter uses) is snapshotted and deleted, or deleted, or kept, as the course
says, and the final cost report comes from the accounting service, which holds the ledger.
The snapshot protects its source: Kubernetes keeps the claim until the snapshot is taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..accounting.k8s import KIND, METERED, USER
from ..config import parse_platform
from ..config.edit import PlatformChange, changed_text
from ..hubadmin import HubAdmin
from .course import ClassError, class_of

SNAPSHOTS = ("snapshot.storage.k8s.io", "v1", "volumesnapshots")


@dataclass
class KubeCloseResult:
    stopped: list[str] = field(default_factory=list)
    homes: dict[str, str] = field(default_factory=dict)  # claim -> "snapshot <name>", "deleted", "kept"


def _snapshot_name(claim: str, class_name: str) -> str:
    return f"{claim}-{class_name}-final"[:253]


async def close_kubernetes(
    core_api,
    custom_api,
    namespace: str,
    configmap: str,
    name: str,
    snapshot_class: str | None,
    hub: HubAdmin | None = None,
) -> KubeCloseResult:
    current = await core_api.read_namespaced_config_map(configmap, namespace)
    source = f"ConfigMap {namespace}/{configmap}"
    text = current.data["platform.yaml"]
    group = class_of(parse_platform(text, source=source), name)
    if group.course.homes == "archive" and not snapshot_class:
        raise ClassError(
            f"class {name!r} archives homes: give --snapshot-class (a VolumeSnapshotClass of the cluster)"
        )
    closed = group.model_dump(mode="json", exclude_none=True)
    closed["course"]["status"] = "closed"
    new_text = changed_text(text, PlatformChange(groups={name: closed}), source=source)
    await core_api.patch_namespaced_config_map(configmap, namespace, {"data": {"platform.yaml": new_text}})

    result = KubeCloseResult()
    members = set(group.members)
    if hub is not None:
        for user in group.members:
            if await hub.stop_server(user):
                result.stopped.append(user)
    claims = await core_api.list_namespaced_persistent_volume_claim(
        namespace, label_selector=f"{METERED}=true,{KIND}=home"
    )
    for claim in claims.items:
        owner = (claim.metadata.annotations or {}).get(USER)
        if owner not in members:
            continue
        claim_name = claim.metadata.name
        if group.course.homes == "keep":
            result.homes[claim_name] = "kept"
            continue
        if group.course.homes == "archive":
            snapshot = _snapshot_name(claim_name, name)
            body = {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshot",
                "metadata": {
                    "name": snapshot,
                    "namespace": namespace,
                    "labels": {"parhelion.dev/class": name},
                    "annotations": {USER: owner},
                },
                "spec": {
                    "volumeSnapshotClassName": snapshot_class,
                    "source": {"persistentVolumeClaimName": claim_name},
                },
            }
            await custom_api.create_namespaced_custom_object(*SNAPSHOTS[:2], namespace, SNAPSHOTS[2], body)
            result.homes[claim_name] = f"snapshot {snapshot}"
        else:
            result.homes[claim_name] = "deleted"
        await core_api.delete_namespaced_persistent_volume_claim(claim_name, namespace)
    return result
