"""Recorded objects (as a real cluster returned them) put into the API stand-in's store.

Tests that replay a cluster's state (the meter's recorded EKS pods, nodes and claims) need it
as the API would serve it, including the status a kubelet or controller wrote. Creating such
an object through the API drops its status (the API server does), so seeding creates it and
then writes its status through the status subresource, as its owner would have. Server-owned
metadata (uid, resourceVersion, creationTimestamp) is the store's own, not the recording's.
"""

from __future__ import annotations

import copy

from tests.rehearsal.store import ObjectStore


def seed(
    store: ObjectStore, objects: list[dict], kind: str, api_version: str = "v1", namespace: str | None = None
) -> list[dict]:
    """Create ``objects`` of ``kind`` (namespaces created as needed); returns them as stored."""
    stored = []
    resource = store.resource_of_kind(kind, api_version)
    for recorded in objects:
        obj = copy.deepcopy(recorded) | {"apiVersion": api_version, "kind": kind}
        meta = obj["metadata"]
        if resource.namespaced:
            meta["namespace"] = meta.get("namespace") or namespace or "default"
            if store.get("Namespace", meta["namespace"]) is None:
                store.create(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": meta["namespace"]}}
                )
        status = obj.get("status")
        made = store.create(obj)
        if status is not None and "status" in resource.subresources:
            made = store.patch(
                kind, meta["name"], meta.get("namespace"), {"status": status}, "merge", "status"
            )
        stored.append(made)
    return stored
