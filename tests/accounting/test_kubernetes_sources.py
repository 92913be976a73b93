"""The meter's Kubernetes path, on objects in the shape EKS with Karpenter returns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from platform_tools.accounting.kubernetes_sources import kubernetes_observations, quantity
from platform_tools.contract.labels import metering_metadata
from platform_tools.pricing.catalog import PriceCatalog

pytestmark = pytest.mark.unit

OBJECTS = json.loads((Path(__file__).parent / "data" / "eks_objects.json").read_text())


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("2", 2.0),
        ("2Gi", 2 * 2**30),
        ("2G", 2e9),
        ("64Mi", 64 * 2**20),
        ("1.5", 1.5),
        (3, 3.0),
    ],
)
def test_quantities(text, value):
    assert quantity(text) == value


def test_bad_quantity_is_named():
    with pytest.raises(ValueError, match="not a Kubernetes quantity: '2 GB'"):
        quantity("2 GB")


def test_observations_priced_per_node_share():
    catalog = PriceCatalog.load()
    found = {
        o.resource_key: o
        for o in kubernetes_observations(OBJECTS["pods"], OBJECTS["nodes"], OBJECTS["claims"], catalog)
    }
    # only metered, scheduled pods and bound claims
    assert sorted(found) == [
        "pod:parhelion/dask-scheduler-5f1e:9a7e-2",
        "pod:parhelion/dask-worker-5f1e-abcde:77b1-3",
        "pod:parhelion/jupyter-ann-40example-2eorg:3c1b0f0e-1",
        "pvc:parhelion/claim-ann-40example-2eorg:c1-6",
    ]
    server = found["pod:parhelion/jupyter-ann-40example-2eorg:3c1b0f0e-1"]
    od = catalog.node("m6i.xlarge", "us-west-2", "on-demand").price_per_hour
    assert server.username == "ann@example.org" and server.kind == "server"
    assert server.rate_per_hour == pytest.approx(0.25 * od)  # max(1/4, 2/16)
    assert server.capacity_type == "on-demand"
    assert server.started_at == pytest.approx(1795251605.0)  # startTime, not creation

    worker = found["pod:parhelion/dask-worker-5f1e-abcde:77b1-3"]
    spot = catalog.node("r6i.2xlarge", "us-west-2", "spot")  # 8 vCPU, 64 GiB
    assert worker.cpu == pytest.approx(2.1)  # both containers
    assert worker.rate_per_hour == pytest.approx(max(2.1 / 8, (16 + 1 / 16) / 64) * spot.price_per_hour)
    assert worker.capacity_type == "spot" and worker.kind == "dask-worker"

    scheduler = found["pod:parhelion/dask-scheduler-5f1e:9a7e-2"]
    assert scheduler.memory_gib == pytest.approx(2e9 / 2**30)

    home = found["pvc:parhelion/claim-ann-40example-2eorg:c1-6"]
    assert home.kind == "storage" and home.storage_gib == 10
    assert home.rate_per_hour == pytest.approx(10 * catalog.storage_per_gib_hour("us-west-2"))


def test_metering_metadata_round_trips_through_the_collector():
    labels, annotations = metering_metadata("bob@example.org", "server")
    pod = json.loads(json.dumps(OBJECTS["pods"][0]))
    pod["metadata"]["labels"] = labels
    pod["metadata"]["annotations"] = annotations
    (obs,) = kubernetes_observations([pod], OBJECTS["nodes"], [], PriceCatalog.load())
    assert (obs.username, obs.kind) == ("bob@example.org", "server")


def test_a_worker_on_an_on_demand_fallback_node_is_priced_on_demand():
    """The dask-workers pool falls back to on-demand when spot is short: the same worker on
    such a node pays the on-demand price, read from the node's karpenter.sh/capacity-type."""
    import copy

    catalog = PriceCatalog.load()
    nodes = copy.deepcopy(OBJECTS["nodes"])
    worker_node = next(
        n for n in nodes if n["metadata"]["labels"].get("karpenter.sh/capacity-type") == "spot"
    )
    worker_node["metadata"]["labels"]["karpenter.sh/capacity-type"] = "on-demand"
    found = {
        o.resource_key: o for o in kubernetes_observations(OBJECTS["pods"], nodes, OBJECTS["claims"], catalog)
    }
    worker = found["pod:parhelion/dask-worker-5f1e-abcde:77b1-3"]
    on_demand = catalog.node("r6i.2xlarge", "us-west-2", "on-demand")
    assert worker.capacity_type == "on-demand"
    assert worker.rate_per_hour == pytest.approx(max(2.1 / 8, (16 + 1 / 16) / 64) * on_demand.price_per_hour)


def test_capacity_rows_for_nodes_placeholders_and_system_pods():
    """Every node at its price; a placeholder and a system pod at their shares by the same rule;
    users' pods left to the user meter; a pod whose requests cannot be read is left out (it
    must never stop users' metering)."""
    from platform_tools.accounting.capacity import capacity_observations
    from platform_tools.accounting.kubernetes_sources import priced_nodes
    from platform_tools.ledger.store import CLUSTER_OWNER

    catalog = PriceCatalog.load()
    nodes = OBJECTS["nodes"]
    priced = priced_nodes(nodes, catalog)
    placeholder = json.loads(json.dumps(OBJECTS["pods"][0]))
    placeholder["metadata"].update(
        name="parhelion-placeholder-0",
        uid="p0",
        labels={"app.kubernetes.io/component": "placeholder"},
        annotations={},
    )
    broken = json.loads(json.dumps(OBJECTS["pods"][4]))
    broken["metadata"].update(name="odd", uid="o1")
    broken["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "2 cores"}}
    pods = [*OBJECTS["pods"], placeholder, broken]
    found = capacity_observations(nodes, priced, pods, "parhelion", 1795251605.0)
    kinds = sorted((o.kind, o.description) for o in found)
    assert kinds == [
        ("node", "m6i.large on-demand"),
        ("node", "m6i.xlarge on-demand"),
        ("node", "r6i.2xlarge spot"),
        ("placeholder", "parhelion/parhelion-placeholder-0"),
        ("system", "parhelion/hub-6d5c9"),
    ]
    assert all(o.capacity and o.username == CLUSTER_OWNER for o in found)
    (held,) = [o for o in found if o.kind == "placeholder"]
    server = kubernetes_observations(OBJECTS["pods"][:1], nodes, [], catalog)[0]
    assert held.rate_per_hour == pytest.approx(server.rate_per_hour)  # same requests, same node, same rule
