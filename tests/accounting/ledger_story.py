"""A ledger built by the real meter code over two days of a small EKS deployment, for the
reconciliation tests: the rehearsal's nodes (tests/rehearsal/cluster.NODES: core m6i.large,
users m6i.xlarge, spot m6i.2xlarge dask workers), and on them the pods the meter sees.

Each sample (every 15 minutes, 2026-11-20 00:00 to 2026-11-22 00:00 UTC) is what
``KubernetesSources.observe`` makes of the objects then running - the same functions:
``kubernetes_observations`` for users' pods and claims, ``capacity_observations`` for nodes,
the placeholder and system pods - recorded with ``Ledger.record_sample``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from platform_tools.accounting.capacity import capacity_observations
from platform_tools.accounting.kubernetes_sources import kubernetes_observations, priced_nodes
from platform_tools.contract.labels import metering_metadata
from platform_tools.ledger.store import Ledger
from platform_tools.pricing.catalog import PriceCatalog
from tests.rehearsal.cluster import NODES

NAMESPACE = "parhelion"
START = datetime(2026, 11, 20, tzinfo=UTC).timestamp()
HOUR = 3600.0
CORE, USERS, DASK = (node["metadata"]["name"] for node in NODES)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _node(node: dict, born: float) -> dict:
    node = copy.deepcopy(node)
    node["metadata"].update(uid=f"uid-{node['metadata']['name']}", creationTimestamp=_iso(born))
    return node


def _pod(name, node, cpu, memory, start, namespace=NAMESPACE, user=None, kind=None, labels=None):
    meta_labels, annotations = metering_metadata(user, kind) if user else ({}, {})
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "creationTimestamp": _iso(start),
            "labels": {**meta_labels, **(labels or {})},
            "annotations": annotations,
        },
        "spec": {
            "nodeName": node,
            "containers": [{"resources": {"requests": {"cpu": cpu, "memory": memory}}}],
        },
        "status": {"phase": "Running", "startTime": _iso(start)},
    }


#: (pod, from hour, to hour) over the two days.
PODS = [
    (lambda s: _pod("aws-node-core", CORE, "25m", "0", s, "kube-system"), 0, 48),
    (lambda s: _pod("aws-node-users", USERS, "25m", "0", s, "kube-system"), 0, 48),
    (lambda s: _pod("aws-node-dask", DASK, "25m", "0", s, "kube-system"), 9, 14),
    (lambda s: _pod("karpenter-0", CORE, "500m", "1Gi", s, "kube-system"), 0, 48),
    (lambda s: _pod("hub-1", CORE, "200m", "512Mi", s), 0, 48),
    (
        lambda s: _pod(
            "parhelion-placeholder-0",
            USERS,
            "1",
            "4Gi",
            s,
            labels={"app.kubernetes.io/component": "placeholder"},
        ),
        0,
        8,
    ),
    (lambda s: _pod("jupyter-ann", USERS, "1", "4Gi", s, user="ann", kind="server"), 8, 18),
    (lambda s: _pod("jupyter-ben", USERS, "500m", "2Gi", s, user="ben", kind="server"), 30, 40),
    (lambda s: _pod("dask-worker-ann", DASK, "2", "8Gi", s, user="ann", kind="dask-worker"), 9, 14),
]
#: (node, from hour, to hour): the dask node only while the burst runs.
NODE_TIMES = [(NODES[0], 0, 48), (NODES[1], 0, 48), (NODES[2], 9, 14)]


def _claim(at: float) -> dict:
    labels, annotations = metering_metadata("ann", "home")
    return {
        "metadata": {
            "name": "claim-ann",
            "namespace": NAMESPACE,
            "uid": "uid-claim-ann",
            "creationTimestamp": _iso(START),
            "labels": labels,
            "annotations": annotations,
        },
        "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}},
    }


def build_ledger(path, every_minutes: int = 15, with_capacity: bool = True) -> dict:
    """The two days' ledger at ``path`` (SQLite); returns what it recorded, for the tests.
    ``with_capacity=False``: as a meter before capacity rows recorded it (users' rows only)."""
    catalog = PriceCatalog.load()
    ledger = Ledger(f"sqlite:///{path}")
    ledger.migrate()
    samples = 0
    step = every_minutes * 60
    for n in range(int(48 * HOUR / step) + 1):
        at = START + n * step
        hour = (at - START) / HOUR
        nodes = [
            _node(node, START + a * HOUR)
            for node, a, b in NODE_TIMES
            if a <= hour < b or (b == 48 and hour == 48)
        ]
        pods = [make(START + a * HOUR) for make, a, b in PODS if a <= hour < b or (b == 48 and hour == 48)]
        users = kubernetes_observations(
            [p for p in pods if p["metadata"]["namespace"] == NAMESPACE and p["metadata"]["annotations"]],
            nodes,
            [_claim(at)],
            catalog,
        )
        capacity = capacity_observations(nodes, priced_nodes(nodes, catalog), pods, NAMESPACE, at)
        ledger.record_sample(at, users + (capacity if with_capacity else []))
        samples += 1
    ledger.close()
    return {"samples": samples, "end": at}
