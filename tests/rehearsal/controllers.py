"""The rehearsal's STAND-IN for kube-controller-manager (and the scheduler): in-process
controllers on the ``ObjectStore``'s event stream.

What a chart's objects need from a control plane to become running processes:
- Deployments and StatefulSets make pods from ``spec.template`` (``replicas``, default 1),
  named as Kubernetes names them (``<deployment>-<template hash>-<5 chars>``,
  ``<statefulset>-<ordinal>``), controlled by their owner (ownerReference, ``controller:
  true``); lost pods are replaced, extra ones removed (a StatefulSet's highest ordinals first),
  and ``status`` counts ``replicas``, ``readyReplicas`` and ``availableReplicas`` from the pods'
  Ready condition. A changed template replaces the pods (no rolling update).
- The scheduler (``scheduler``) binds pending pods to Nodes.
- Endpoints follow each Service with a selector: ready pods' IPs as ``addresses``, the others
  as ``notReadyAddresses``, ports resolved to the pods' ``targetPort`` (named ports looked up
  in the pod's containers), labels copied from the Service.

Approximations: Deployments own their pods directly (no ReplicaSet in between), StatefulSets
start all ordinals at once (podManagementPolicy Parallel) and make no PersistentVolumeClaims
from ``volumeClaimTemplates``; ``minReadySeconds`` and rollout strategies are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging

from tests.rehearsal.errors import ApiError
from tests.rehearsal.scheduler import Scheduler
from tests.rehearsal.store import ObjectStore

log = logging.getLogger(__name__)
WORKLOADS = ("Deployment", "StatefulSet")
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes renders hashes in


def template_hash(template: dict) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:10])


def is_ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def controller_of(obj: dict) -> dict | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


class Workloads:
    """Deployments and StatefulSets: their pods and their status."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def reconcile(self, kind: str, name: str, namespace: str) -> None:
        owner = self.store.get(kind, name, namespace)
        if owner is None or owner["metadata"].get("deletionTimestamp"):
            return
        owned = [
            p
            for p in self.store.list("Pod", namespace)
            if (controller_of(p) or {}).get("uid") == owner["metadata"]["uid"]
        ]
        if kind == "Deployment":
            self._deployment(owner, owned)
        else:
            self._statefulset(owner, owned)
        self._status(owner, kind)

    def _pod(self, owner: dict, labels: dict, **metadata) -> dict:
        template = copy.deepcopy(owner["spec"].get("template") or {})
        meta = template.get("metadata") or {}
        meta.pop("name", None)
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
        meta["namespace"] = owner["metadata"]["namespace"]
        meta["ownerReferences"] = [
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        meta.update(metadata)
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec") or {}}

    def _delete(self, pod: dict) -> None:
        self.store.delete("Pod", pod["metadata"]["name"], pod["metadata"]["namespace"])

    def _deployment(self, owner: dict, owned: list[dict]) -> None:
        wanted = owner["spec"].get("replicas", 1)
        current_hash = template_hash(owner["spec"].get("template") or {})
        live = [p for p in owned if not p["metadata"].get("deletionTimestamp")]
        current = []
        for pod in live:
            if pod["metadata"].get("labels", {}).get("pod-template-hash") == current_hash:
                current.append(pod)
            else:
                self._delete(pod)  # an old template: replaced, not rolled
        # surplus: unready ones first, then the newest
        current.sort(key=lambda p: (not is_ready(p), p["metadata"]["creationTimestamp"]), reverse=True)
        for pod in current[: max(0, len(current) - wanted)]:
            self._delete(pod)
        prefix = f"{owner['metadata']['name']}-{current_hash}-"
        for _ in range(wanted - len(current)):
            self.store.create(self._pod(owner, {"pod-template-hash": current_hash}, generateName=prefix))

    def _statefulset(self, owner: dict, owned: list[dict]) -> None:
        name, wanted = owner["metadata"]["name"], owner["spec"].get("replicas", 1)
        revision = f"{name}-{template_hash(owner['spec'].get('template') or {})}"
        by_name = {p["metadata"]["name"]: p for p in owned}
        for pod in sorted(owned, key=lambda p: -int(p["metadata"]["name"].rsplit("-", 1)[-1])):
            ordinal = int(pod["metadata"]["name"].rsplit("-", 1)[-1])
            outdated = pod["metadata"].get("labels", {}).get("controller-revision-hash") != revision
            if (ordinal >= wanted or outdated) and not pod["metadata"].get("deletionTimestamp"):
                self._delete(pod)  # the highest ordinals first
        for ordinal in range(wanted):
            pod_name = f"{name}-{ordinal}"
            if pod_name in by_name:
                continue  # running, or still terminating: its successor waits for the name
            labels = {
                "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": str(ordinal),
            }
            pod = self._pod(owner, labels, name=pod_name)
            pod["spec"] |= {"hostname": pod_name, "subdomain": owner["spec"].get("serviceName", "")}
            self.store.create(pod)

    def _status(self, owner: dict, kind: str) -> None:
        meta = owner["metadata"]
        pods = [
            p
            for p in self.store.list("Pod", meta["namespace"])
            if (controller_of(p) or {}).get("uid") == meta["uid"]
            and not p["metadata"].get("deletionTimestamp")
        ]
        ready = sum(is_ready(p) for p in pods)
        wanted = owner["spec"].get("replicas", 1)
        status = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": len(pods),
        }
        if kind == "Deployment":
            available = "True" if ready >= wanted else "False"
            status["unavailableReplicas"] = max(0, wanted - ready)
            status["conditions"] = [
                {"type": "Available", "status": available, "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ]
        else:
            status["currentReplicas"] = len(pods)
        self.store.patch(kind, meta["name"], meta["namespace"], {"status": status}, "merge", "status")


class EndpointsController:
    """An Endpoints object per Service with a selector, kept to the pods it selects."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def reconcile_namespace(self, namespace: str) -> None:
        for service in self.store.list("Service", namespace):
            self.reconcile(service)

    @staticmethod
    def _port(port: dict, pod: dict) -> int | None:
        target = port.get("targetPort", port["port"])
        if isinstance(target, int) or str(target).isdigit():
            return int(target)
        for container in pod["spec"].get("containers") or []:
            for declared in container.get("ports") or []:
                if declared.get("name") == target:
                    return declared["containerPort"]
        return None

    def reconcile(self, service: dict) -> None:
        meta, spec = service["metadata"], service.get("spec") or {}
        selector = spec.get("selector")
        if not selector:
            return  # endpoints of a Service without a selector are somebody else's
        subsets: dict[tuple, dict] = {}
        for pod in self.store.list("Pod", meta["namespace"], labels=selector):
            ip = (pod.get("status") or {}).get("podIP")
            if not ip or pod["metadata"].get("deletionTimestamp"):
                continue
            ports = tuple(
                (p.get("name", ""), self._port(p, pod), p.get("protocol", "TCP"))
                for p in spec.get("ports") or []
            )
            if any(number is None for _, number, _ in ports):
                continue  # a named targetPort this pod does not declare
            subset = subsets.setdefault(ports, {"addresses": [], "notReadyAddresses": []})
            address = {
                "ip": ip,
                "nodeName": pod["spec"].get("nodeName"),
                "targetRef": {
                    "kind": "Pod",
                    "name": pod["metadata"]["name"],
                    "namespace": pod["metadata"]["namespace"],
                    "uid": pod["metadata"]["uid"],
                },
            }
            subset["addresses" if is_ready(pod) else "notReadyAddresses"].append(address)
        listed = []
        for ports, subset in subsets.items():
            entry = {k: v for k, v in subset.items() if v}
            entry["ports"] = [
                {"name": name, "port": number, "protocol": protocol}
                if name
                else {"port": number, "protocol": protocol}
                for name, number, protocol in ports
            ]
            listed.append(entry)
        labels = meta.get("labels") or {}
        existing = self.store.get("Endpoints", meta["name"], meta["namespace"])
        if existing is None:
            existing = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            }
        updated = {k: v for k, v in existing.items() if k != "subsets"}
        updated["metadata"] = {**existing["metadata"], "labels": labels}
        if listed:
            updated["subsets"] = listed
        if "uid" in existing["metadata"]:
            self.store.replace(updated)
        else:
            self.store.create(updated)

    def forget(self, service: dict) -> None:
        self.store.delete("Endpoints", service["metadata"]["name"], service["metadata"]["namespace"])


class ControllerManager:
    """Runs the stand-in controllers on the store's events until stopped.

    ``await start()`` subscribes, reconciles everything once, and follows changes in a task on
    the running loop; ``await stop()`` cancels it. Also an async context manager.
    """

    def __init__(self, store: ObjectStore):
        self.store = store
        self.workloads = Workloads(store)
        self.scheduler = Scheduler(store)
        self.endpoints = EndpointsController(store)
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._queue = self.store.subscribe()
        for kind in WORKLOADS:
            for owner in self.store.list(kind):
                self._guarded(
                    self.workloads.reconcile, kind, owner["metadata"]["name"], owner["metadata"]["namespace"]
                )
        self._guarded(self.scheduler.schedule_pending)
        for service in self.store.list("Service"):
            self._guarded(self.endpoints.reconcile, service)
        self._task = asyncio.create_task(self._follow(), name="stand-in controller-manager")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._queue is not None:
            self.store.unsubscribe(self._queue)
            self._queue = None

    async def __aenter__(self) -> ControllerManager:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def idle(self) -> None:
        """Wait until every change so far has been handled (for tests that then assert)."""
        while self._queue is not None and not self._queue.empty():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)

    def _guarded(self, step, *args) -> None:
        try:
            step(*args)
        except ApiError as error:  # a conflict or a vanished object: the next event retries
            log.debug("%s%s: %s", getattr(step, "__name__", step), args, error)
        except Exception:  # a bug here must not stop every controller for the rest of the test
            log.exception("controller step %s%s failed", getattr(step, "__name__", step), args)

    async def _follow(self) -> None:
        while True:
            event_type, obj = await self._queue.get()
            self._guarded(self._handle, event_type, obj)

    def _handle(self, event_type: str, obj: dict) -> None:
        kind, meta = obj.get("kind"), obj["metadata"]
        if kind in WORKLOADS and event_type != "DELETED":
            self.workloads.reconcile(kind, meta["name"], meta["namespace"])
        elif kind == "Pod":
            owner = controller_of(obj)
            if owner and owner.get("kind") in WORKLOADS:
                self._guarded(self.workloads.reconcile, owner["kind"], owner["name"], meta["namespace"])
            if event_type != "DELETED" and self.scheduler.wants(obj):
                self._guarded(self.scheduler.schedule, obj)
            self.endpoints.reconcile_namespace(meta["namespace"])
        elif kind == "Node" and event_type != "DELETED":
            self.scheduler.schedule_pending()
        elif kind == "Service":
            if event_type == "DELETED":
                self.endpoints.forget(obj)
            else:
                self.endpoints.reconcile(obj)
