"""The capacity no user is charged for, metered so the ledger can be set against the bill.

Users pay their pods' shares of their nodes (``pricing.cost``); the rest of each node's price
goes to nobody. To say where it went, the meter also records, as capacity rows (the ledger's
``capacity`` table, under ``CLUSTER_OWNER``, never in any user's spend):

* every node, at its whole price per hour: node-hours and what they cost;
* class placeholders (the chart's ``app.kubernetes.io/component=placeholder`` pods, or
  Zero to JupyterHub's ``component=user-placeholder``), at their share by the same rule;
* every other pod on a node that is not a metered user pod (kube-system, Karpenter, the hub,
  the proxy, the gateway, this service), at its share by the same rule: system pods.

What remains of a node's price after users, placeholders and system pods is idle capacity.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from platform_tools.accounting.quantities import pod_requests
from platform_tools.accounting.quantities import timestamp as parse_timestamp
from platform_tools.contract.labels import METERED, USER
from platform_tools.ledger.store import CLUSTER_OWNER, Observation
from platform_tools.pricing.catalog import Node
from platform_tools.pricing.cost import hourly_cost

log = logging.getLogger(__name__)

#: Pod labels that mark a placeholder (label, value).
PLACEHOLDER_LABELS = (
    ("app.kubernetes.io/component", "placeholder"),
    ("component", "user-placeholder"),
)


def _timestamp(text: str | None, default: float) -> float:
    return parse_timestamp(text) if text else default


def is_users(pod: dict, metered_namespace: str) -> bool:
    """Whether the user meter charges this pod: metered, with an owner, in its namespace."""
    meta = pod["metadata"]
    return (
        meta.get("namespace") == metered_namespace
        and (meta.get("labels") or {}).get(METERED) == "true"
        and bool((meta.get("annotations") or {}).get(USER))
    )


def is_placeholder(pod: dict) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return any(labels.get(key) == value for key, value in PLACEHOLDER_LABELS)


def capacity_observations(
    nodes: Iterable[dict],
    priced: dict[str, Node],
    all_pods: Iterable[dict] | None,
    metered_namespace: str,
    at: float,
) -> list[Observation]:
    """Capacity rows: every priced node, and (when ``all_pods``, every namespace's pods, was
    readable) placeholders and system pods on them. Pods the user meter charges (metered pods
    in ``metered_namespace`` with an owner) are left out: they are users'."""
    observations = []
    for node in nodes:
        meta = node["metadata"]
        priced_node = priced.get(meta["name"])
        if priced_node is None:
            continue
        observations.append(
            Observation(
                resource_key=f"node:{meta['name']}:{meta.get('uid', '')}",
                username=CLUSTER_OWNER,
                kind="node",
                started_at=_timestamp(meta.get("creationTimestamp"), at),
                rate_per_hour=priced_node.price_per_hour,
                description=f"{priced_node.instance_type} {priced_node.capacity_type}"
                + (" (estimated price)" if priced_node.estimated else ""),
                cpu=priced_node.vcpu,
                memory_gib=priced_node.memory_gib,
                instance_type=priced_node.instance_type,
                capacity_type=priced_node.capacity_type,
                capacity=True,
                node=meta["name"],
            )
        )
    for pod in all_pods or ():
        meta, status = pod["metadata"], pod.get("status") or {}
        node_name = pod["spec"].get("nodeName", "")
        priced_node = priced.get(node_name)
        if priced_node is None or status.get("phase") not in ("Running", "Pending"):
            continue
        if is_users(pod, metered_namespace):
            continue  # the user meter charges it
        try:
            cpu, memory = pod_requests(pod)
        except ValueError as exc:  # another project's pod must never stop users' metering
            log.warning("pod %s/%s not counted as capacity: %s", meta.get("namespace"), meta["name"], exc)
            continue
        kind = "placeholder" if is_placeholder(pod) else "system"
        observations.append(
            Observation(
                resource_key=f"{kind}:{meta.get('namespace', '')}/{meta['name']}:{meta.get('uid', '')}",
                username=CLUSTER_OWNER,
                kind=kind,
                started_at=min(_timestamp(status.get("startTime") or meta.get("creationTimestamp"), at), at),
                rate_per_hour=hourly_cost(cpu, memory, priced_node),
                description=f"{meta.get('namespace', '')}/{meta['name']}",
                cpu=cpu,
                memory_gib=memory,
                instance_type=priced_node.instance_type,
                capacity_type=priced_node.capacity_type,
                capacity=True,
                node=node_name,
            )
        )
    return observations
