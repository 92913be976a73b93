"""The meter's Kubernetes source: pods, nodes and volume claims, priced.

Which pods are metered, and for whom, comes from Parhelion's own metadata
(``platform_tools.contract.labels``), which the hub and dask-gateway's kubernetes backend
put on every pod and claim they make.

A pod is charged its share of the node it runs on: the node's instance type
(``node.kubernetes.io/instance-type``), capacity type (Karpenter's
``karpenter.sh/capacity-type``, or EKS managed node groups'
``eks.amazonaws.com/capacityType``) and region (``topology.kubernetes.io/region``)
select the price. A claim is charged its provisioned capacity.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from platform_tools.accounting.capacity import capacity_observations
from platform_tools.accounting.quantities import pod_requests, quantity, timestamp
from platform_tools.accounting.sources import SourceError
from platform_tools.clients.kubernetes import api_client
from platform_tools.contract.labels import KIND, METERED, SELECTOR, USER
from platform_tools.ledger.store import Observation
from platform_tools.pricing.catalog import Node, PriceCatalog, PriceError
from platform_tools.pricing.cost import hourly_cost, storage_hourly_cost

log = logging.getLogger(__name__)
_TOLD: set[tuple[str, str]] = set()  # unpriced nodes already logged (once per node and type)


def node_of(node: dict, catalog: PriceCatalog) -> Node:
    """The node's price from its labels; a type (or region) the catalog lacks is priced by
    its capacity with ``PriceCatalog.estimate``, so one unknown node never stops the meter
    (it once froze metering and every cap for everyone)."""
    labels = node["metadata"].get("labels", {})
    instance_type = labels.get("node.kubernetes.io/instance-type") or labels.get(
        "beta.kubernetes.io/instance-type"
    )
    capacity = labels.get("karpenter.sh/capacity-type") or {"SPOT": "spot", "ON_DEMAND": "on-demand"}.get(
        labels.get("eks.amazonaws.com/capacityType", ""), "on-demand"
    )
    region = labels.get("topology.kubernetes.io/region", "us-east-1")
    capacity_type = "spot" if capacity == "spot" else "on-demand"
    try:
        return catalog.node(instance_type or "", region, capacity_type)
    except PriceError:
        size = (node.get("status") or {}).get("capacity") or {}
        try:
            vcpu, memory = quantity(size.get("cpu", 0)), quantity(size.get("memory", 0)) / 2**30
        except ValueError:
            vcpu = memory = 0.0
        return catalog.estimate(instance_type or "unknown", region, capacity_type, vcpu, memory)


def priced_nodes(nodes: Iterable[dict], catalog: PriceCatalog) -> dict[str, Node]:
    """Each node by name, priced; one priced by its size is logged once per node and type."""
    priced = {node["metadata"]["name"]: node_of(node, catalog) for node in nodes}
    for name, node in priced.items():
        if node.estimated and (name, node.instance_type) not in _TOLD:
            _TOLD.add((name, node.instance_type))
            log.warning(
                "node %s: no price for %s (%s) in the catalog; charged $%.4f/h by its size",
                name,
                node.instance_type,
                node.capacity_type,
                node.price_per_hour,
            )
    return priced


def kubernetes_observations(
    pods: Iterable[dict],
    nodes: Iterable[dict],
    claims: Iterable[dict],
    catalog: PriceCatalog,
    storage_kind: str = "ebs-gp3",
) -> list[Observation]:
    """Observations for metered pods that run on a node, and metered bound claims."""
    return observations_on(pods, priced_nodes(nodes, catalog), claims, catalog, storage_kind)


def observations_on(
    pods: Iterable[dict],
    priced: dict[str, Node],
    claims: Iterable[dict],
    catalog: PriceCatalog,
    storage_kind: str = "ebs-gp3",
) -> list[Observation]:
    """``kubernetes_observations`` with the nodes already priced (``priced_nodes``)."""
    observations = []
    for pod in pods:
        meta, status = pod["metadata"], pod.get("status", {})
        node = priced.get(pod["spec"].get("nodeName", ""))
        user = (meta.get("annotations") or {}).get(USER)
        if node is None or not user or status.get("phase") not in ("Running", "Pending"):
            continue
        started = status.get("startTime") or meta["creationTimestamp"]
        cpu, memory = pod_requests(pod)
        observations.append(
            Observation(
                resource_key=f"pod:{meta['namespace']}/{meta['name']}:{meta['uid']}",
                username=user,
                kind=meta.get("labels", {}).get(KIND, "pod"),
                started_at=timestamp(started),
                rate_per_hour=hourly_cost(cpu, memory, node),
                description=meta["name"] + (" (estimated price)" if node.estimated else ""),
                cpu=cpu,
                memory_gib=memory,
                instance_type=node.instance_type,
                capacity_type=node.capacity_type,
            )
        )
    regions = {node.region for node in priced.values()} or {"us-east-1"}
    per_gib_hour = catalog.storage_per_gib_hour(sorted(regions)[0], storage_kind)
    for claim in claims:
        meta = claim["metadata"]
        user = (meta.get("annotations") or {}).get(USER)
        capacity = (claim.get("status") or {}).get("capacity", {}).get("storage")
        if not user or capacity is None or claim.get("status", {}).get("phase") != "Bound":
            continue
        size = quantity(capacity) / 2**30
        observations.append(
            Observation(
                resource_key=f"pvc:{meta['namespace']}/{meta['name']}:{meta['uid']}",
                username=user,
                kind="storage",
                started_at=timestamp(meta["creationTimestamp"]),
                rate_per_hour=storage_hourly_cost(size, per_gib_hour),
                description=f"volume {meta['name']} ({size:g} GiB)",
                storage_gib=size,
            )
        )
    return observations


class KubernetesSources:
    """Reads metered pods, all nodes and metered claims through the Kubernetes API.

    Uses kubernetes_asyncio, configured by ``clients.kubernetes``: the given client
    ``configuration`` (a test's API server), else the pod's service account (read-only RBAC
    on pods, nodes and persistentvolumeclaims, granted by the chart), else a kubeconfig.
    """

    def __init__(
        self,
        namespace: str,
        catalog: Callable[[], PriceCatalog],
        storage_kind: str = "ebs-gp3",
        configuration: Any = None,
    ):
        self.namespace = namespace
        self.catalog = catalog
        self.storage_kind = storage_kind
        self.configuration = configuration
        self.unpriced: list[str] = []  # nodes of the last sample priced by size (a metric)
        self._told_forbidden = False

    async def _all_pods(self, core):
        """Every namespace's pods (placeholders and system pods, for the capacity rows), or
        None when the service account may not list them (a chart from before it could): the
        nodes are still recorded, and their system pods count as idle."""
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            return await core.list_pod_for_all_namespaces()
        except ApiException as exc:
            if exc.status != 403:
                raise
            if not self._told_forbidden:
                self._told_forbidden = True
                log.warning("may not list pods in every namespace: system pods are counted as idle")
            return None

    async def observe(self) -> list[Observation]:
        from kubernetes_asyncio import client

        try:
            async with api_client(self.configuration) as api:
                core = client.CoreV1Api(api)
                # every namespace's pods at once (users' pods among them: one list, not two, of
                # what may be thousands); only this namespace's metered ones if that is forbidden
                everywhere = await self._all_pods(core)
                serialize = api.sanitize_for_serialization
                if everywhere is None:
                    listed = await core.list_namespaced_pod(self.namespace, label_selector=SELECTOR)
                    pods = [serialize(p) for p in listed.items]
                else:
                    pods = [serialize(p) for p in everywhere.items]
                nodes = await core.list_node()
                claims = await core.list_namespaced_persistent_volume_claim(
                    self.namespace, label_selector=SELECTOR
                )
                catalog = self.catalog()
                node_objects = [serialize(n) for n in nodes.items]
                priced = priced_nodes(node_objects, catalog)
                self.unpriced = sorted(name for name, node in priced.items() if node.estimated)
                metered = [
                    p
                    for p in pods
                    if p["metadata"].get("namespace") == self.namespace
                    and (p["metadata"].get("labels") or {}).get(METERED) == "true"
                ]
                users = observations_on(
                    metered,
                    priced,
                    [serialize(c) for c in claims.items],
                    catalog,
                    self.storage_kind,
                )
                all_pods = None if everywhere is None else pods
                return users + capacity_observations(
                    node_objects, priced, all_pods, self.namespace, time.time()
                )
        except Exception as exc:  # the API unreachable: skip the sample, never half-record
            raise SourceError(f"kubernetes API: {exc}") from exc


__all__ = ["SELECTOR", "KubernetesSources", "kubernetes_observations", "quantity"]
