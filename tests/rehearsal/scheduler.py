"""The rehearsal's STAND-IN for kube-scheduler (and for z2jh's user-scheduler, which is a
kube-scheduler too): binds pending pods to the Nodes of the ``ObjectStore``.

It applies the filters a chart's pods depend on: ``nodeSelector``, required node affinity
(In, NotIn, Exists, DoesNotExist, Gt, Lt), taints with effect NoSchedule/NoExecute against
``tolerations``, cordoned nodes; then picks the node with the fewest pods (no resource
accounting: the process kubelet does not enforce requests either). A pod that fits nowhere
gets what the real scheduler writes and KubeSpawner shows its user: condition PodScheduled
False reason Unschedulable, and a FailedScheduling Warning Event with the real message shape
("0/2 nodes are available: 1 node(s) had untolerated taint {...}, ..."). It retries such pods
when a Node is added or changes. Every pod is scheduled whatever its ``schedulerName``.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter

from tests.rehearsal.errors import ApiError
from tests.rehearsal.resources import now
from tests.rehearsal.store import ObjectStore

log = logging.getLogger(__name__)
NAME = "default-scheduler"


def _tolerates(toleration: dict, taint: dict) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", "")


def untolerated_taint(pod: dict, node: dict) -> dict | None:
    tolerations = pod["spec"].get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(
            _tolerates(t, taint) for t in tolerations
        ):
            return taint
    return None


def _expression_matches(expression: dict, labels: dict) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
    present, value = key in labels, labels.get(key)
    match operator:
        case "In":
            return present and value in values
        case "NotIn":
            return not present or value not in values
        case "Exists":
            return present
        case "DoesNotExist":
            return not present
        case "Gt" | "Lt":
            if not present or not str(value).lstrip("-").isdigit():
                return False
            return int(value) > int(values[0]) if operator == "Gt" else int(value) < int(values[0])
    return False


def selects_node(pod: dict, node: dict) -> bool:
    """nodeSelector and requiredDuringSchedulingIgnoredDuringExecution node affinity."""
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod["spec"].get("nodeSelector") or {}).items()):
        return False
    affinity = ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not affinity:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    return any(
        all(_expression_matches(e, labels) for e in term.get("matchExpressions") or [])
        and all(_expression_matches(e, fields) for e in term.get("matchFields") or [])
        for term in affinity.get("nodeSelectorTerms") or []
    )


def unschedulable_message(reasons: Counter, nodes: int) -> str:
    if not nodes:
        return "no nodes available to schedule pods"
    why = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return (
        f"0/{nodes} nodes are available: {why}. preemption: 0/{nodes} nodes are available: "
        f"{nodes} Preemption is not helpful for scheduling."
    )


class Scheduler:
    """Binds pods; driven by :class:`controllers.ControllerManager`'s event loop."""

    def __init__(self, store: ObjectStore):
        self.store = store

    @staticmethod
    def wants(pod: dict) -> bool:
        return not pod["spec"].get("nodeName") and not pod["metadata"].get("deletionTimestamp")

    def schedule_pending(self) -> None:
        for pod in self.store.list("Pod"):
            if self.wants(pod):
                self.schedule(pod)

    def schedule(self, pod: dict) -> None:
        """Bind ``pod`` (as it is now in the store: an event's copy may be stale) or say why not."""
        pod = self.store.get("Pod", pod["metadata"]["name"], pod["metadata"]["namespace"])
        if pod is None or not self.wants(pod):
            return
        nodes = self.store.list("Node")
        fits, reasons = [], Counter()
        for node in nodes:
            taint = untolerated_taint(pod, node)
            if (node.get("spec") or {}).get("unschedulable"):
                reasons["node(s) were unschedulable"] += 1
            elif taint is not None:  # kube-scheduler's filter order: taints before node affinity
                reasons[f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"] += 1
            elif not selects_node(pod, node):
                reasons["node(s) didn't match Pod's node affinity/selector"] += 1
            else:
                fits.append(node)
        meta = pod["metadata"]
        try:
            if fits:
                load = Counter(p["spec"].get("nodeName") for p in self.store.list("Pod"))
                chosen = min(fits, key=lambda n: (load[n["metadata"]["name"]], n["metadata"]["name"]))
                self._bind(pod, chosen["metadata"]["name"])
            else:
                self._unschedulable(pod, unschedulable_message(reasons, len(nodes)))
        except ApiError as error:  # the pod went away meanwhile
            log.debug("scheduling %s/%s: %s", meta.get("namespace"), meta["name"], error)

    def _condition(self, pod: dict, status: str, reason: str | None, message: str | None) -> None:
        condition = {"type": "PodScheduled", "status": status, "lastTransitionTime": now()}
        if reason:
            condition |= {"reason": reason, "message": message}
        meta = pod["metadata"]
        self.store.patch(
            "Pod",
            meta["name"],
            meta["namespace"],
            {"status": {"conditions": [condition]}},
            "strategic",
            "status",
        )

    def _bind(self, pod: dict, node: str) -> None:
        meta = pod["metadata"]
        self.store.patch("Pod", meta["name"], meta["namespace"], {"spec": {"nodeName": node}})
        self._condition(pod, "True", None, None)
        self._event(
            pod, "Normal", "Scheduled", f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}"
        )

    def _unschedulable(self, pod: dict, message: str) -> None:
        current = next(
            (c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"),
            {},
        )
        if current.get("status") == "False" and current.get("message") == message:
            return  # already told; the real scheduler backs off too
        self._condition(pod, "False", "Unschedulable", message)
        self._event(pod, "Warning", "FailedScheduling", message)

    def _event(self, pod: dict, type_: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        stamp = now()
        self.store.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                    "namespace": meta["namespace"],
                },
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta["uid"],
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "source": {"component": NAME},
                "reportingComponent": NAME,
                "reportingInstance": NAME,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "eventTime": None,
                "count": 1,
            }
        )
