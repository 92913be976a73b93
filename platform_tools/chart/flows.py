"""Kubernetes NetworkPolicy semantics, evaluated: may this pod reach that one on this port?

A flow is allowed when the source may send it (no policy of the source's namespace selects the
source for Egress, or one that does allows it) and the destination may receive it (likewise for
Ingress; a destination outside the cluster has no ingress side). A rule allows a flow when one
of its peers matches (no peers: every peer) and one of its ports matches (no ports: every port).
Peers: ``podSelector`` (the policy's namespace, unless a ``namespaceSelector`` is given),
``namespaceSelector`` (namespaces by their labels, ``kubernetes.io/metadata.name`` included),
``ipBlock`` (``cidr`` less ``except``, applied to the peer's IP: pods' IPs are in the private
pod range, as on EKS with the VPC CNI). Ports: number or the destination container's port name,
protocol (TCP by default) and ``endPort``. Selectors: ``matchLabels`` and ``matchExpressions``
(In, NotIn, Exists, DoesNotExist). This is what the chart tier runs over the rendered policies
and the labels of the pods KubeSpawner and dask-gateway really make.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoint:
    """A pod (labels, namespace, named ports) or an address outside the cluster."""

    name: str
    ip: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str | None = None  # None: not a pod
    ports: Mapping[str, int] = field(default_factory=dict)  # container port names

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def selects(selector: Mapping | None, labels: Mapping[str, str]) -> bool:
    """A label selector; an empty one selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def _peer_matches(peer: Mapping, other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.ip)
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except") or [])
    if not other.is_pod:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], _namespace_labels(other.namespace)):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], other.labels)


def _port_matches(rule_port: Mapping, port: int, protocol: str, destination: Endpoint) -> bool:
    if rule_port.get("protocol", "TCP") != protocol:
        return False
    wanted = rule_port.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str) and not wanted.isdigit():
        return destination.ports.get(wanted) == port
    end = rule_port.get("endPort")
    return int(wanted) == port if end is None else int(wanted) <= port <= int(end)


def _policy_types(policy: Mapping) -> list[str]:
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _side_allows(
    policies: Iterable[Mapping], pod: Endpoint, other: Endpoint, port: int, protocol: str, direction: str
) -> tuple[bool, list[str]]:
    """(allowed, names of the policies that select ``pod`` for ``direction``)."""
    applying = [
        p
        for p in policies
        if p["metadata"].get("namespace", pod.namespace) == pod.namespace
        and selects(p["spec"].get("podSelector"), pod.labels)
        and direction in _policy_types(p)
    ]
    if not applying:
        return True, []
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    destination = pod if direction == "Ingress" else other
    namespace = pod.namespace
    for policy in applying:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if peers and not any(_peer_matches(peer, other, namespace) for peer in peers):
                continue
            ports = rule.get("ports")
            if ports and not any(_port_matches(p, port, protocol, destination) for p in ports):
                continue
            return True, [p["metadata"]["name"] for p in applying]
    return False, [p["metadata"]["name"] for p in applying]


def allowed(
    policies: Iterable[Mapping], source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP"
) -> tuple[bool, str]:
    """(allowed, why): the policies that decided, for a message naming the flow."""
    policies = [p for p in policies if p.get("kind") == "NetworkPolicy"]
    out, egress = (
        _side_allows(policies, source, destination, port, protocol, "Egress")
        if source.is_pod
        else (
            True,
            [],
        )
    )
    if not out:
        return False, f"egress of {source.name} denied by the policies selecting it: {', '.join(egress)}"
    if destination.is_pod:
        inbound, ingress = _side_allows(policies, destination, source, port, protocol, "Ingress")
        if not inbound:
            return (
                False,
                f"ingress of {destination.name} denied by the policies selecting it: {', '.join(ingress)}",
            )
    return True, "allowed"
