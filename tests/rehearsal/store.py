"""The API stand-in's object store: kube-apiserver's storage semantics, in memory.

One store is the whole cluster state of a rehearsal. The HTTP face (``apiserver.ApiServer``),
the stand-in controllers and the process kubelet all write through it, so every writer sees
the semantics clients rely on: a global resourceVersion, ``generation`` bumped by spec
changes only, status writes split from spec writes, graceful pod deletion that waits for the
kubelet, finalizers, owner-reference garbage collection and namespace termination.

It lives on one asyncio event loop and is not thread-safe: served in a thread
(``serving_in_thread``) only that thread's requests may touch it until the server stops.
Approximations: no admission, defaulting or schema validation beyond names and labels; every
served version of a kind is the same object (no conversion); Foreground deletion is treated
as Background; events never expire.
"""

from __future__ import annotations

import asyncio
import copy
import random
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tests.rehearsal import errors
from tests.rehearsal.errors import ApiError
from tests.rehearsal.kinds import Kinds
from tests.rehearsal.patches import PATCH_TYPES, apply_patch
from tests.rehearsal.resources import (
    ResourceType,
    default_service,
    helm_install_sequence,
    initial_status,
    now,
    validate_labels,
    validate_name,
)
from tests.rehearsal.scale import apply_scale, scale_of
from tests.rehearsal.selectors import labels_match, parse_field_selector, parse_label_selector

HISTORY = 1000  # watch events kept for resuming from a resourceVersion; older ones get 410 Gone
_NAME_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet generateName draws from
_READ_ONLY_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass(frozen=True)
class Change:
    """One committed write, as watches and subscribers see it."""

    resource_version: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: ResourceType
    obj: dict
    old: dict | None


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _comparable(obj: dict) -> dict:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": meta}


class ObjectStore:
    """The stand-in cluster state (see the module docstring). Returned dicts are deep copies."""

    def __init__(self, history: int = HISTORY):
        self.kinds = Kinds()
        self._objects: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}
        self._uids: dict[str, tuple[ResourceType, str, str]] = {}
        self._version = 0
        self._services = 0  # cluster IPs handed out
        self._compacted = 0  # the newest resourceVersion whose change was dropped from history
        self._history: deque[Change] = deque(maxlen=history)
        self._listeners: list[Callable[[Change], None]] = []
        self._queues: dict[int, Callable[[Change], None]] = {}
        for name in INITIAL_NAMESPACES:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # ---- kinds -------------------------------------------------------------------------------
    def register(
        self,
        group: str,
        version: str,
        kind: str,
        plural: str,
        namespaced: bool = True,
        subresources: tuple[str, ...] = (),
    ) -> None:
        """Serve one more kind (a CRD's kinds come through :meth:`register_crd` or create)."""
        self.kinds.add(ResourceType(group, [version], kind, plural, namespaced, tuple(subresources)))

    def register_crd(self, crd: dict) -> None:
        """Serve the kinds of an apiextensions.k8s.io/v1 CRD, as creating it would."""
        self.kinds.add_crd(crd)

    def types(self) -> list[ResourceType]:
        return self.kinds.all()

    def resource_at(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.kinds.at(group, version, plural)

    def resource_of_kind(self, kind: str, api_version: str | None = None) -> ResourceType:
        return self.kinds.of_kind(kind, api_version)

    # ---- reading -----------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        return self._version

    def _stored(self, resource: ResourceType, name: str, namespace: str | None) -> dict | None:
        key = (namespace or "" if resource.namespaced else "", name)
        return self._objects.get(resource.storage_key, {}).get(key)

    def _find(self, resource: ResourceType, name: str, namespace: str | None) -> dict:
        found = self._stored(resource, name, namespace)
        if found is None:
            raise errors.not_found(resource.plural, name, resource.group)
        return found

    def read(self, resource: ResourceType, name: str, namespace: str | None) -> dict:
        """A copy of one object of a type, or 404 NotFound."""
        return copy.deepcopy(self._find(resource, name, namespace))

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        found = self._stored(self.resource_of_kind(kind), name, namespace)
        return copy.deepcopy(found) if found is not None else None

    def objects(self, resource: ResourceType, namespace: str | None = None) -> list[dict]:
        """The stored objects of a type (not copies: for the HTTP face, which copies)."""
        stored = self._objects.get(resource.storage_key, {})
        return [stored[key] for key in sorted(stored) if namespace is None or key[0] == namespace]

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        labels: str | dict | None = None,
        fields: str | None = None,
    ) -> list[dict]:
        requirements, field_match = parse_label_selector(labels), parse_field_selector(fields)
        return [
            copy.deepcopy(obj)
            for obj in self.objects(self.resource_of_kind(kind), namespace)
            if labels_match(requirements, obj) and field_match(obj)
        ]

    def history_since(self, resource_version: int) -> list[Change] | None:
        """The changes after ``resource_version``, or None when they are no longer all kept."""
        if resource_version < self._compacted:
            return None
        return [c for c in self._history if c.resource_version > resource_version]

    # ---- notifications -----------------------------------------------------------------------
    def add_listener(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener`` synchronously with every committed change (the HTTP watches)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Change], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def subscribe(self) -> asyncio.Queue:
        """A queue of ``(event_type, object copy)`` for every change from now on."""
        queue: asyncio.Queue = asyncio.Queue()

        def put(change: Change) -> None:
            queue.put_nowait((change.type, copy.deepcopy(change.obj)))

        self._queues[id(queue)] = put
        self.add_listener(put)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.remove_listener(self._queues.pop(id(queue), None))

    def _commit(self, type_: str, resource: ResourceType, obj: dict, old: dict | None) -> dict:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if type_ == "DELETED":
            self._objects.get(resource.storage_key, {}).pop(key, None)
            self._uids.pop(meta["uid"], None)
        else:
            self._objects.setdefault(resource.storage_key, {})[key] = obj
            self._uids[meta["uid"]] = (resource, meta.get("namespace", ""), meta["name"])
        change = Change(self._version, type_, resource, copy.deepcopy(obj), old)
        if len(self._history) == self._history.maxlen:
            self._compacted = self._history[0].resource_version
        self._history.append(change)
        for listener in list(self._listeners):
            listener(change)
        return copy.deepcopy(obj)

    # ---- writing -----------------------------------------------------------------------------
    def create(self, obj: dict, dry_run: bool = False) -> dict:
        resource = self.resource_of_kind(obj.get("kind", ""), obj.get("apiVersion", ""))
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        for key in (*_READ_ONLY_METADATA, "resourceVersion", "managedFields", "generation"):
            meta.pop(key, None)
        if resource.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
            self._check_namespace(meta["namespace"])
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(_NAME_SUFFIX, k=5))
        validate_name(resource.kind, meta.get("name", ""))
        validate_labels(resource.kind, meta["name"], meta.get("labels"))
        if self._stored(resource, meta["name"], meta.get("namespace")) is not None:
            raise errors.already_exists(resource.plural, meta["name"], resource.group)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        initial_status(resource, obj)
        if resource.kind == "Service":
            default_service(
                obj.setdefault("spec", {}), lambda: self.allocate_cluster_ip(meta["namespace"], meta["name"])
            )
        if dry_run:
            return obj
        if resource.kind == "CustomResourceDefinition":
            self.register_crd(obj)
        return self._commit("ADDED", resource, obj, None)

    def allocate_cluster_ip(self, namespace: str, name: str) -> str:
        """A new Service's ClusterIP; a pod network replaces this with addresses it serves."""
        self._services += 1
        return f"10.96.{self._services // 250}.{self._services % 250 + 1}"

    def _check_namespace(self, name: str) -> None:
        namespace = self._stored(self.resource_of_kind("Namespace"), name, None)
        if namespace is None:
            raise errors.not_found("namespaces", name)
        if namespace["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {name} because it is being terminated",
            )

    def _write(
        self, resource: ResourceType, old: dict, new: dict, subresource: str | None, dry_run: bool
    ) -> dict:
        """An update as the API server applies it: what the subresource may change, generation,
        no-op detection, and removal once a deleted object's finalizers are gone."""
        if subresource == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = copy.deepcopy(new["status"])
            else:
                result.pop("status", None)
        elif subresource is None:
            result = copy.deepcopy(new)
            meta = result.setdefault("metadata", {})
            for key in ("name", "namespace", "generation", *_READ_ONLY_METADATA):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
                else:
                    meta.pop(key, None)
            if "status" in resource.subresources:
                if "status" in old:
                    result["status"] = copy.deepcopy(old["status"])
                else:
                    result.pop("status", None)
            result["apiVersion"], result["kind"] = old["apiVersion"], old["kind"]
        else:
            raise errors.not_found(
                f"{resource.plural}/{subresource}", old["metadata"]["name"], resource.group
            )
        meta = result["metadata"]
        validate_labels(resource.kind, meta["name"], meta.get("labels"))
        if _spec_part(result) != _spec_part(old):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if _comparable(result) == _comparable(old) or dry_run:
            return copy.deepcopy(result)
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not self._waits_for_kubelet(result)
        ):
            return self._remove(resource, result, "Background")
        if resource.kind == "CustomResourceDefinition":
            self.register_crd(result)
        return self._commit("MODIFIED", resource, result, copy.deepcopy(old))

    @staticmethod
    def _waits_for_kubelet(obj: dict) -> bool:
        """A bound pod being deleted gracefully stays until its kubelet confirms it stopped."""
        meta = obj["metadata"]
        return (
            obj.get("kind") == "Pod"
            and bool((obj.get("spec") or {}).get("nodeName"))
            and bool(meta.get("deletionGracePeriodSeconds"))
        )

    def patch(
        self,
        kind: str,
        name: str,
        namespace: str | None,
        body,
        patch_type: str = "merge",
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict:
        """``patch_type`` merge|strategic|json, or a PATCH content type."""
        return self.patch_resource(
            self.resource_of_kind(kind),
            name,
            namespace,
            body,
            PATCH_TYPES.get(patch_type, patch_type),
            subresource,
            dry_run,
        )

    def patch_resource(
        self,
        resource: ResourceType,
        name: str,
        namespace: str | None,
        body,
        content_type: str,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict:
        old = self._find(resource, name, namespace)
        if subresource == "scale":
            scale = apply_patch(scale_of(resource, old), body, content_type)
            self._write(resource, old, apply_scale(resource, old, scale), None, dry_run)
            return scale_of(resource, self._find(resource, name, namespace))
        new = apply_patch(copy.deepcopy(old), body, content_type)
        self._check_precondition(resource, old, new.get("metadata") or {})
        return self._write(resource, old, new, subresource, dry_run)

    @staticmethod
    def _check_precondition(resource: ResourceType, old: dict, meta: dict) -> None:
        wanted = meta.get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.plural, old["metadata"]["name"], resource.group)
        if meta.get("uid") and meta["uid"] != old["metadata"]["uid"]:
            raise errors.conflict(resource.plural, old["metadata"]["name"], resource.group)

    def replace(self, obj: dict, subresource: str | None = None, dry_run: bool = False) -> dict:
        resource = self.resource_of_kind(obj.get("kind", ""), obj.get("apiVersion"))
        meta = obj.get("metadata") or {}
        return self.replace_resource(
            resource, meta.get("name", ""), meta.get("namespace"), obj, subresource, dry_run
        )

    def replace_resource(
        self,
        resource: ResourceType,
        name: str,
        namespace: str | None,
        obj: dict,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict:
        """PUT: the whole object (or Scale), refused with 409 when its resourceVersion is stale."""
        old = self._find(resource, name, namespace)
        self._check_precondition(resource, old, obj.get("metadata") or {})
        if subresource == "scale":
            self._write(resource, old, apply_scale(resource, old, obj), None, dry_run)
            return scale_of(resource, self._find(resource, name, namespace))
        return self._write(resource, old, obj, subresource, dry_run)

    def delete(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        grace: bool = True,
        propagation: str = "Background",
        dry_run: bool = False,
    ) -> dict | None:
        """Delete as the API server does; None when there is no such object."""
        resource = self.resource_of_kind(kind)
        if self._stored(resource, name, namespace) is None:
            return None
        return self.delete_resource(resource, name, namespace, grace, propagation, dry_run)

    def delete_resource(
        self,
        resource: ResourceType,
        name: str,
        namespace: str | None,
        grace: bool = True,
        propagation: str = "Background",
        dry_run: bool = False,
    ) -> dict:
        """The object as it is after the request: gone (the last state) or marked for deletion."""
        old = self._find(resource, name, namespace)
        obj = copy.deepcopy(old)
        meta = obj["metadata"]
        if dry_run:
            return obj
        if resource.kind == "Namespace":
            return self._terminate_namespace(resource, obj)
        if resource.kind == "Pod" and obj.get("spec", {}).get("nodeName"):
            period = (obj["spec"].get("terminationGracePeriodSeconds", 30) if grace else 0) or 0
            if not meta.get("deletionTimestamp") or meta.get("deletionGracePeriodSeconds", 0) > period:
                meta.setdefault("deletionTimestamp", now())
                meta["deletionGracePeriodSeconds"] = period
        if meta.get("finalizers") or self._waits_for_kubelet(obj):
            meta.setdefault("deletionTimestamp", now())
            meta.setdefault("deletionGracePeriodSeconds", 0)
            if propagation == "Orphan":
                self._orphan_dependents(meta["uid"])
            if obj == old:
                return obj
            return self._commit("MODIFIED", resource, obj, copy.deepcopy(old))
        return self._remove(resource, obj, propagation)

    def _remove(self, resource: ResourceType, obj: dict, propagation: str) -> dict:
        gone = self._commit("DELETED", resource, obj, None)
        uid, namespace = gone["metadata"]["uid"], gone["metadata"].get("namespace")
        if resource.kind == "CustomResourceDefinition":
            self._unregister_crd(gone)
        if propagation == "Orphan":
            self._orphan_dependents(uid)
        else:
            self._collect_dependents(uid)
        if namespace:
            self._finish_namespace(namespace)
        return gone

    def _dependents(self, uid: str) -> list[tuple[ResourceType, dict]]:
        found = []
        for resource in self.kinds.all():
            for obj in self.objects(resource):
                if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or []):
                    found.append((resource, obj))
        return found

    def _collect_dependents(self, uid: str) -> None:
        """Background garbage collection: a dependent goes when none of its owners is left."""
        for resource, obj in self._dependents(uid):
            owners = [ref.get("uid") for ref in obj["metadata"].get("ownerReferences") or []]
            if not any(owner in self._uids for owner in owners):
                meta = obj["metadata"]
                if self._stored(resource, meta["name"], meta.get("namespace")) is not None:
                    self.delete_resource(resource, meta["name"], meta.get("namespace"))

    def _orphan_dependents(self, uid: str) -> None:
        for resource, obj in self._dependents(uid):
            new = copy.deepcopy(obj)
            refs = [ref for ref in new["metadata"]["ownerReferences"] if ref.get("uid") != uid]
            new["metadata"]["ownerReferences"] = refs
            self._write(resource, obj, new, None, False)

    def _unregister_crd(self, crd: dict) -> None:
        """A deleted CRD takes its kinds and all their objects with it."""
        for served in self.kinds.remove_crd(crd):
            for obj in list(self._objects.pop(served.storage_key, {}).values()):
                self._commit("DELETED", served, copy.deepcopy(obj), None)

    def _terminate_namespace(self, resource: ResourceType, namespace: dict) -> dict:
        """Namespace deletion: Terminating, its content deleted, then the namespace itself."""
        name = namespace["metadata"]["name"]
        if not namespace["metadata"].get("deletionTimestamp"):
            old = copy.deepcopy(namespace)
            namespace["metadata"]["deletionTimestamp"] = now()
            namespace["status"] = {"phase": "Terminating"}
            namespace = self._commit("MODIFIED", resource, namespace, old)
        for content_type in self.kinds.all():
            if content_type.namespaced:
                for obj in self.objects(content_type, name):
                    if self._stored(content_type, obj["metadata"]["name"], name) is not None:
                        self.delete_resource(content_type, obj["metadata"]["name"], name)
        self._finish_namespace(name)
        return copy.deepcopy(self._stored(resource, name, None) or namespace)

    def _finish_namespace(self, name: str) -> None:
        resource = self.resource_of_kind("Namespace")
        namespace = self._stored(resource, name, None)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return
        if any(self.objects(r, name) for r in self.kinds.all() if r.namespaced):
            return
        self._remove(resource, copy.deepcopy(namespace), "Background")

    # ---- helm --------------------------------------------------------------------------------
    def load(self, manifests: list[dict], namespace: str) -> None:
        """Create rendered manifests as ``helm install --create-namespace`` would (the order and
        the hooks left out as ``resources.helm_install_sequence`` says)."""
        if self._stored(self.resource_of_kind("Namespace"), namespace, None) is None:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for manifest in helm_install_sequence(manifests):
            manifest = copy.deepcopy(manifest)
            resource = self.resource_of_kind(manifest.get("kind", ""), manifest.get("apiVersion", ""))
            if resource.namespaced:
                manifest.setdefault("metadata", {}).setdefault("namespace", namespace)
            self.create(manifest)
