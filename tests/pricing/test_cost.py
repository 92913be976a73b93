"""Prices and the cost rule, checked against numbers worked out by hand."""

from __future__ import annotations

import json

import pytest

from platform_tools.config import parse_platform
from platform_tools.pricing.catalog import DEFAULT_CATALOG, HOURS_PER_MONTH, PriceCatalog, PriceError
from platform_tools.pricing.cost import hourly_cost, node_share, storage_hourly_cost

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def catalog() -> PriceCatalog:
    return PriceCatalog.load()


def test_catalog_is_dated_and_says_where_prices_come_from(catalog):
    assert catalog.as_of == "2024-11-01"
    assert "spot prices are ESTIMATES" in catalog.source
    assert {"us-east-1", "us-west-2"} <= set(catalog.regions)


def test_node_prices(catalog):
    node = catalog.node("m6i.xlarge", "us-east-1", "on-demand")
    assert (node.vcpu, node.memory_gib, node.price_per_hour) == (4, 16, 0.192)
    spot = catalog.node("m6i.xlarge", "us-east-1", "spot")
    assert spot.price_per_hour < node.price_per_hour


def test_share_is_the_larger_fraction(catalog):
    node = catalog.node("m6i.xlarge", "us-east-1", "on-demand")  # 4 vCPU, 16 GiB, $0.192/h
    assert node_share(1, 2, node) == 0.25  # cpu-bound: 1/4 > 2/16
    assert node_share(0.5, 8, node) == 0.5  # memory-bound: 8/16 > 0.5/4
    assert hourly_cost(1, 2, node) == pytest.approx(0.048)
    assert hourly_cost(0.5, 8, node) == pytest.approx(0.096)
    assert hourly_cost(4, 16, node) == pytest.approx(0.192)  # the whole node


def test_dask_worker_on_spot(catalog):
    node = catalog.node("r6i.2xlarge", "us-west-2", "spot")  # 8 vCPU, 64 GiB
    assert hourly_cost(2, 16, node) == pytest.approx(0.25 * node.price_per_hour)


def test_storage_per_gib_hour(catalog):
    per_hour = catalog.storage_per_gib_hour("us-east-1", "ebs-gp3")
    assert per_hour == pytest.approx(0.08 / HOURS_PER_MONTH)
    assert storage_hourly_cost(10, per_hour) * HOURS_PER_MONTH == pytest.approx(0.8)


def test_unknown_things_are_named(catalog):
    with pytest.raises(PriceError, match="no price for instance type 'm9z.huge' in us-east-1"):
        catalog.node("m9z.huge", "us-east-1", "on-demand")
    with pytest.raises(PriceError, match="no prices for region 'mars-north-1'"):
        catalog.node("m6i.xlarge", "mars-north-1", "on-demand")
    with pytest.raises(ValueError, match="must not be negative"):
        node_share(-1, 1, catalog.node("m6i.xlarge", "us-east-1", "on-demand"))


def test_corrupt_catalog_is_named(tmp_path):
    bad = tmp_path / "prices.json"
    bad.write_text(json.dumps({"version": 1, "as_of": "x", "source": "y", "regions": {"r": {}}}))
    with pytest.raises(PriceError, match=f"{bad}: not a usable price catalog"):
        PriceCatalog.load(bad)


def test_example_profile_prices_match_the_cost_rule(catalog, example_text):
    """What users are shown per hour is what the ledger will charge on the virtual node."""
    config = parse_platform(example_text)
    virtual = config.accounting.virtual_node
    node = catalog.node(virtual.instance_type, virtual.region, virtual.capacity_type)
    for name, profile in config.profiles.items():
        charged = hourly_cost(profile.cpu_guarantee, profile.mem_guarantee_gib, node)
        assert profile.price_per_hour_usd == pytest.approx(charged), name


def test_packaged_catalog_round_trips(tmp_path, catalog):
    copy = tmp_path / "copy.json"
    catalog.save(copy)
    assert PriceCatalog.load(copy) == catalog
    assert DEFAULT_CATALOG.is_file()
