"""`parhelion prices refresh`: the price catalog from AWS's APIs, and what goes wrong.

EC2 is moto's real server; the Price List Query API, which moto does not emulate, is the
documented stand-in of tests/aws.py. `parhelion` runs as a command, with boto3 pointed
at both through its standard AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL_PRICING settings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from platform_tools.pricing.aws import PriceRefreshError
from platform_tools.pricing.catalog import DEFAULT_CATALOG, LiveCatalog, PriceCatalog
from platform_tools.pricing.refresh import INSTANCE_ATTRIBUTES, changes, single_price
from tests.aws import DENIED_ACCESS_KEY, MotoServer, PricingStandIn, aws_test_env, price_list_items
from tests.platform import run_parhelion

SHIPPED = PriceCatalog.load()
SHIPPED_BYTES = DEFAULT_CATALOG.read_bytes()
NEW_M6I_XLARGE = 0.2016  # a test price change in us-east-1, so the refresh has something to report
STORAGE = {"ebs-gp3": 0.08, "efs-standard": 0.30}


def _on_demand() -> dict[str, dict[str, float]]:
    prices = {
        r: {t: p.on_demand for t, p in SHIPPED.regions[r].instances.items()}
        for r in ("us-east-1", "us-west-2")
    }
    prices["us-east-1"]["m6i.xlarge"] = NEW_M6I_XLARGE
    return prices


ITEMS = price_list_items(_on_demand(), {"us-east-1": STORAGE, "us-west-2": STORAGE})


# ------------------------------------------------------------------ unit: reading products


@pytest.mark.unit
def test_only_the_plain_linux_on_demand_price_is_taken():
    matching = [
        item
        for item in ITEMS
        if item["product"]["attributes"].get("instanceType") == "m6i.xlarge"
        and item["product"]["attributes"]["regionCode"] == "us-west-2"
    ]
    assert len(matching) == 6  # the product and five decoys
    # filtered as the API would with the refresh's TERM_MATCH attributes
    kept = [
        i
        for i in matching
        if all(i["product"]["attributes"].get(k) == v for k, v in INSTANCE_ATTRIBUTES.items())
    ]
    assert (
        single_price(kept, "Hrs", "BoxUsage", "m6i.xlarge")
        == SHIPPED.regions["us-west-2"].instances["m6i.xlarge"].on_demand
    )
    # were a decoy let through (here: dedicated tenancy), the refresh would refuse to guess
    dedicated = [i for i in matching if i["product"]["attributes"]["tenancy"] == "Dedicated"]
    with pytest.raises(
        PriceRefreshError, match="has 2 different on-demand prices for m6i.xlarge .*refusing to guess"
    ):
        single_price(kept + dedicated, "Hrs", "Usage", "m6i.xlarge")


@pytest.mark.unit
def test_missing_price_names_the_type_and_region():
    with pytest.raises(PriceRefreshError, match="no on-demand price for m9z.huge in us-east-1"):
        single_price([], "Hrs", "BoxUsage", "m9z.huge in us-east-1")


@pytest.mark.unit
def test_changes_list_what_an_admin_reviews():
    data = SHIPPED.model_dump()
    data["regions"]["us-east-1"]["instances"]["m6i.xlarge"]["on_demand"] = NEW_M6I_XLARGE
    data["regions"]["us-east-1"]["instances"]["m6i.xlarge"]["spot"] = None
    del data["regions"]["us-west-2"]
    lines = changes(SHIPPED, PriceCatalog.model_validate(data))
    assert lines == [
        "us-east-1 m6i.xlarge on-demand: $0.192 -> $0.2016",
        "us-east-1 m6i.xlarge spot: $0.07296 -> none",
        "us-west-2: not in the new catalog",
    ]


@pytest.mark.unit
def test_a_running_service_takes_a_refreshed_catalog_and_keeps_the_last_good_one(tmp_path):
    path = tmp_path / "prices.json"
    SHIPPED.save(path)
    live = LiveCatalog(path)
    assert live.current().node("m6i.xlarge", "us-east-1", "on-demand").price_per_hour == 0.192
    data = SHIPPED.model_dump()
    data["regions"]["us-east-1"]["instances"]["m6i.xlarge"]["on_demand"] = NEW_M6I_XLARGE
    data["as_of"] = "2026-11-21"
    PriceCatalog.model_validate(data).save(path)
    assert live.current().node("m6i.xlarge", "us-east-1", "on-demand").price_per_hour == NEW_M6I_XLARGE
    path.write_text('{"version": 1, "as_of": "2026-11-22", "regions": {}}')  # no source: invalid
    assert live.current().as_of == "2026-11-21"
    assert "source" in live.rejected and str(path) in live.rejected


# ------------------------------------------------------- integration: the command against APIs


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """moto's server for EC2 and the Price List stand-in, both stopped at the end."""
    logs = tmp_path_factory.mktemp("aws")
    moto = MotoServer(logs / "moto.log")
    pricing = PricingStandIn(ITEMS)
    try:
        moto.start()
        pricing.start()
        yield moto, pricing
    finally:
        pricing.stop()
        moto.stop()


@pytest.fixture
def workspace(tmp_path, example_text, aws):
    """A platform.yaml whose accounting.price_catalog is in a temp state dir; the AWS env."""
    moto, pricing = aws
    state = tmp_path / "state"
    text = example_text.replace(
        "  virtual_node:", "  price_catalog: prices/aws_prices.json\n  virtual_node:", 1
    )
    assert "price_catalog" in text
    config = tmp_path / "platform.yaml"
    config.write_text(text)
    env = aws_test_env(tmp_path, AWS_ENDPOINT_URL_EC2=moto.url, AWS_ENDPOINT_URL_PRICING=pricing.url)
    return config, state, env


def _refresh(config: Path, state: Path, env: dict, *args: str):
    return run_parhelion(
        "prices", "refresh", "--config", str(config), "--state-dir", str(state), *args, env=env
    )


@pytest.mark.integration
def test_refresh_writes_a_dated_catalog_the_platform_then_uses(workspace, aws):
    config, state, env = workspace
    _, pricing = aws
    asked = len(pricing.requests)
    done = _refresh(config, state, env)
    assert done.returncode == 0, done.stderr
    written = state / "prices" / "aws_prices.json"
    catalog = PriceCatalog.load(written)
    assert catalog.as_of == datetime.now(UTC).date().isoformat()
    assert "AWS Price List Query API" in catalog.source and "median over availability zones" in catalog.source
    assert sorted(catalog.regions) == ["us-east-1", "us-west-2"]
    for region, prices in catalog.regions.items():
        assert prices.storage_per_gib_month == STORAGE
        assert set(prices.instances) == set(SHIPPED.regions[region].instances)
        for name, price in prices.instances.items():
            shipped = SHIPPED.regions[region].instances[name]
            # sizes from EC2 (moto knows the real ones), on-demand from the price list,
            # spot from EC2's spot history (moto answers $0.00001 in every zone)
            assert (price.vcpu, price.memory_gib) == (shipped.vcpu, shipped.memory_gib), name
            assert price.spot == 0.00001
            expected = NEW_M6I_XLARGE if (region, name) == ("us-east-1", "m6i.xlarge") else shipped.on_demand
            assert price.on_demand == expected, (region, name)
    assert "us-east-1 m6i.xlarge on-demand: $0.192 -> $0.2016" in done.stdout
    assert f"wrote {written}" in done.stdout
    # every instance query used the filters that exclude the decoys, page by page
    queries = [r for r in pricing.requests[asked:] if any(f["Field"] == "instanceType" for f in r["Filters"])]
    assert len(queries) == 2 * 38
    assert all({f["Field"] for f in q["Filters"]} >= set(INSTANCE_ATTRIBUTES) for q in queries)

    shown = run_parhelion(
        "prices",
        "show",
        "m6i.xlarge",
        "--region",
        "us-east-1",
        "--config",
        str(config),
        "--state-dir",
        str(state),
    )
    assert shown.returncode == 0, shown.stderr
    assert str(written) in shown.stdout and catalog.as_of in shown.stdout
    assert "m6i.xlarge          4      16         0.2016    0.0000" in shown.stdout


@pytest.mark.integration
def test_dry_run_and_chosen_types_write_nothing(workspace):
    config, state, env = workspace
    done = _refresh(config, state, env, "--dry-run", "--instance-type", "m6i.xlarge", "--region", "us-east-1")
    assert done.returncode == 0, done.stderr
    assert "reading prices of 1 instance types in us-east-1" in done.stdout
    assert "dry run: nothing written" in done.stdout
    assert not (state / "prices").exists()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "env_change", "message"),
    [
        (
            ["--instance-type", "m6i.nope"],
            {},
            "ec2:DescribeInstanceTypes in us-east-1: InvalidInstanceType: "
            "The following supplied instance types do not exist: [m6i.nope]",
        ),
        (
            ["--instance-type", "m6i.xlarge", "--region", "eu-west-3"],
            {},
            "the AWS price list has no on-demand price for m6i.xlarge in eu-west-3",
        ),
        (
            ["--instance-type", "m6i.xlarge", "--region", "us-west-2"],
            {},
            "not written: accounting.virtual_node in",
        ),
        (
            [],
            {"AWS_ACCESS_KEY_ID": DENIED_ACCESS_KEY},
            "AccessDeniedException: User is not authorized to perform: pricing:GetProducts "
            "(the AWS identity lacks the permission for pricing:GetProducts)",
        ),
        ([], {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}, "no AWS credentials"),
    ],
    ids=["unknown-type", "unpriced-region", "virtual-node-unpriced", "access-denied", "no-credentials"],
)
def test_a_failed_refresh_says_why_and_leaves_the_catalog_as_it_was(workspace, args, env_change, message):
    config, state, env = workspace
    written = state / "prices" / "aws_prices.json"
    written.parent.mkdir(parents=True)
    SHIPPED.save(written)
    before = written.read_bytes()
    for key, value in env_change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    done = _refresh(config, state, env, *args)
    assert done.returncode == 1, done.stdout
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert written.read_bytes() == before
    assert sorted(p.name for p in written.parent.iterdir()) == ["aws_prices.json"]


@pytest.mark.integration
def test_refresh_needs_to_know_where_to_write(tmp_path, example_text, aws):
    moto, pricing = aws
    config = tmp_path / "platform.yaml"
    config.write_text(example_text)  # no accounting.price_catalog
    env = aws_test_env(tmp_path, AWS_ENDPOINT_URL_EC2=moto.url, AWS_ENDPOINT_URL_PRICING=pricing.url)
    done = _refresh(config, tmp_path / "state", env)
    assert done.returncode == 2
    assert f"Set accounting.price_catalog in {config}" in done.stderr and "--output FILE" in done.stderr
    out = tmp_path / "elsewhere.json"
    done = _refresh(config, tmp_path / "state", env, "--output", str(out), "--instance-type", "m6i.xlarge")
    assert done.returncode == 0, done.stderr
    assert (
        json.loads(out.read_text())["regions"]["us-east-1"]["instances"]["m6i.xlarge"]["on_demand"]
        == NEW_M6I_XLARGE
    )
    assert (
        DEFAULT_CATALOG.read_bytes() == SHIPPED_BYTES
    )  # the catalog shipped in the package is never written
