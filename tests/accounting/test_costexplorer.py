"""The reconciliation on recorded Cost Explorer responses and a ledger the real meter code built.

Cost Explorer cannot run here and moto's answers nothing of use (its GetCostAndUsage returns
empty results unless fed). The recorded responses (data/costexplorer, see its README) are
served through botocore's Stubber on a real boto3 ``ce`` client: the narrowest seam, below
everything Parhelion does (the client class, its pagination, its backoff) and above only the
HTTP transport. The Stubber still checks each request against Cost Explorer's service model
(a wrong filter shape fails), the parameters against what is expected here (the tag filter,
the grouping, the page token), and each recorded response against the operation's output
shape; errors are the real ClientError shapes AWS returns.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from platform_tools.accounting.bill import MissingTag, reconcile_with_bill
from platform_tools.accounting.reconcile import IDLE, NETWORK, OTHER, STORAGE, UNMETERED, USERS
from platform_tools.clients.costexplorer import CostExplorer, CostExplorerError
from platform_tools.config import load_platform
from platform_tools.ledger.daily import ledger_days, open_read_only
from tests.accounting.ledger_story import build_ledger

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data" / "costexplorer"
FIRST, LAST = date(2026, 11, 20), date(2026, 11, 22)
FILTER = {"Tags": {"Key": "parhelion.dev/cluster", "Values": ["parhelion"], "MatchOptions": ["EQUALS"]}}
DAILY = {
    "TimePeriod": {"Start": "2026-11-20", "End": "2026-11-23"},
    "Granularity": "DAILY",
    "Metrics": ["UnblendedCost"],
    "Filter": FILTER,
    "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
}
BY_TAG = {
    "TimePeriod": {"Start": "2026-11-20", "End": "2026-11-23"},
    "Granularity": "MONTHLY",
    "Metrics": ["UnblendedCost"],
    "GroupBy": [{"Type": "TAG", "Key": "parhelion.dev/cluster"}],
}


def recorded(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def stubbed() -> tuple[CostExplorer, Stubber, list[float]]:
    """A CostExplorer on a real boto3 client whose responses the Stubber serves; the sleeps
    its backoff asked for are in the list (nothing sleeps)."""
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("ce")
    slept: list[float] = []
    explorer = CostExplorer(
        "parhelion.dev/cluster",
        "parhelion",
        client=client,
        role_hint="the role parhelion-accounting",
        sleep=slept.append,
    )
    return explorer, Stubber(client), slept


def recorded_bill(stubber: Stubber) -> None:
    stubber.add_response("get_cost_and_usage", recorded("daily_page1"), DAILY)
    stubber.add_response(
        "get_cost_and_usage", recorded("daily_page2"), {**DAILY, "NextPageToken": "eyJwYWdlIjoyfQ=="}
    )


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """The two days' ledger (tests/accounting/ledger_story.py) and platform.yaml for it."""
    root = tmp_path_factory.mktemp("story")
    state = root / "state"
    state.mkdir()
    build_ledger(state / "accounting.sqlite")
    from tests.platform import platform_config_text

    text = (
        platform_config_text()
        .replace("name: parhelion-local", "name: parhelion")
        .replace("  users: [demo]", "  users: [demo, ann, ben]")
        .replace("    members: [demo]", "    members: [demo, ann]")
    )
    (root / "platform.yaml").write_text(text)
    return root


def test_daily_bill_follows_pages_and_keeps_amounts_exact():
    explorer, stubber, _ = stubbed()
    recorded_bill(stubber)
    with stubber:
        days = explorer.daily_bill(FIRST, LAST)
    stubber.assert_no_pending_responses()
    assert [(d.day, d.estimated, len(d.lines)) for d in days] == [
        (date(2026, 11, 20), False, 14),
        (date(2026, 11, 21), True, 9),  # its groups came on both pages
        (date(2026, 11, 22), True, 0),  # no data yet
    ]
    assert days[0].lines[2].usage_type == "SpotUsage:m6i.2xlarge"
    assert days[0].lines[2].amount == Decimal("0.7612345678")
    assert explorer.requests == 2


def test_the_recorded_bill_and_the_story_ledger_reconcile_to_the_cent(story):
    config = load_platform(story / "platform.yaml")
    explorer, stubber, _ = stubbed()
    recorded_bill(stubber)
    ledger = open_read_only(f"sqlite:///{story / 'state' / 'accounting.sqlite'}")
    with stubber:
        result = reconcile_with_bill(config, ledger, explorer, FIRST, LAST, group="researchers")
    found = {d.day: d for d in ledger_days(ledger, FIRST, LAST)}
    ledger.close()
    pages = [recorded("daily_page1"), recorded("daily_page2")]

    def recorded_sum(day: str, keep) -> Decimal:
        """Straight from the recorded JSON, without Parhelion's sorting of lines."""
        return sum(
            (
                Decimal(g["Metrics"]["UnblendedCost"]["Amount"])
                for page in pages
                for r in page["ResultsByTime"]
                if r["TimePeriod"]["Start"] == day
                for g in r["Groups"]
                if keep(*g["Keys"])
            ),
            Decimal(0),
        )

    def cents(amount) -> int:
        amount = amount if isinstance(amount, Decimal) else Decimal(repr(amount))
        return int((amount * 100).quantize(Decimal(1), rounding="ROUND_HALF_EVEN"))

    for day in result.days[:2]:
        iso = day.day.isoformat()
        rows = dict(day.rows)
        assert sum(rows.values()) == day.bill_cents == cents(recorded_sum(iso, lambda s, u: True))
        ledger_day = found[day.day]
        users = sum(ledger_day.users_compute.values()) + sum(ledger_day.users_storage.values())
        assert abs(rows[USERS] - cents(users)) <= 1  # as charged (a rounding cent may go to it)
        network = recorded_sum(
            iso, lambda s, u: "NatGateway" in u or "DataTransfer" in u or "PublicIPv4" in u
        )
        assert abs(rows[NETWORK] - cents(network)) <= 1
        eks = recorded_sum(iso, lambda s, u: "AmazonEKS" in u or s == "AmazonCloudWatch")
        assert abs(rows[OTHER] - cents(eks)) <= 1
        storage = recorded_sum(
            iso, lambda s, u: "EBS:" in u or s.startswith("Amazon Simple Storage") or "File" in s
        )
        assert (
            abs(rows[STORAGE] - cents(storage - Decimal(repr(sum(ledger_day.users_storage.values()))))) <= 1
        )
        ec2 = recorded_sum(iso, lambda s, u: s == "Amazon Elastic Compute Cloud - Compute")
        node = Decimal(repr(ledger_day.capacity_usd["node"]))
        assert abs(rows[UNMETERED] - cents(ec2 - node)) <= 1
        assert day.ec2_cents == cents(ec2) and day.node_cents == cents(node)
    first, second, third = result.days
    # the 20th: 2 nodes all day and the dask node 4.75 h; its users' pods, the placeholder until
    # 08:00 and the system pods attributed part of the nodes' price, the rest idle
    assert first.node_hours == pytest.approx(52.75) and not first.estimated and second.estimated
    assert 0 < first.attributed_ratio < 0.5 and dict(first.rows)[IDLE] > 0
    assert first.group_cents == cents(
        sum(found[FIRST].users_compute.values()) + sum(found[FIRST].users_storage.values())
    )
    assert third.bill_cents is None and "no Cost Explorer data" in third.notes[0]
    assert (
        result.notes[0]
        == "bill: Cost Explorer UnblendedCost, DAILY, tag parhelion.dev/cluster=parhelion, 2 request(s)"
    )


def test_untagged_cost_says_to_activate_the_tag(story):
    config = load_platform(story / "platform.yaml")
    explorer, stubber, _ = stubbed()
    stubber.add_response("get_cost_and_usage", recorded("daily_untagged"), DAILY)
    stubber.add_response("get_cost_and_usage", recorded("tags_untagged"), BY_TAG)
    ledger = open_read_only(f"sqlite:///{story / 'state' / 'accounting.sqlite'}")
    with stubber, pytest.raises(MissingTag) as raised:
        reconcile_with_bill(config, ledger, explorer, FIRST, LAST)
    ledger.close()
    message = str(raised.value)
    assert "none of it tagged parhelion.dev/cluster=parhelion" in message
    assert "under 'parhelion.dev/cluster$'" in message
    assert "ce:UpdateCostAllocationTagsStatus" in message and "Cost allocation tags" in message


def test_cost_tagged_for_another_cluster_names_the_setting(story):
    config = load_platform(story / "platform.yaml")
    explorer, stubber, _ = stubbed()
    stubber.add_response("get_cost_and_usage", recorded("daily_untagged"), DAILY)
    stubber.add_response("get_cost_and_usage", recorded("tags_other_cluster"), BY_TAG)
    ledger = open_read_only(f"sqlite:///{story / 'state' / 'accounting.sqlite'}")
    with (
        stubber,
        pytest.raises(MissingTag, match="some tagged parhelion-staging: set accounting.reconcile.tag_value"),
    ):
        reconcile_with_bill(config, ledger, explorer, FIRST, LAST)
    ledger.close()


def test_throttling_is_retried_with_backoff_then_said():
    explorer, stubber, slept = stubbed()
    stubber.add_client_error("get_cost_and_usage", "ThrottlingException", "Rate exceeded", 400)
    stubber.add_client_error(
        "get_cost_and_usage", "LimitExceededException", "You have exceeded the rate limit", 400
    )
    recorded_bill(stubber)
    with stubber:
        days = explorer.daily_bill(FIRST, LAST)
    assert len(days) == 3 and slept == [1.0, 2.0] and explorer.requests == 4

    explorer, stubber, slept = stubbed()
    for _ in range(5):
        stubber.add_client_error(
            "get_cost_and_usage", "LimitExceededException", "You have exceeded the rate limit", 400
        )
    with stubber, pytest.raises(CostExplorerError) as raised:
        explorer.daily_bill(FIRST, LAST)
    assert slept == [1.0, 2.0, 4.0, 8.0]
    assert str(raised.value).startswith(
        "Cost Explorer is throttling requests (LimitExceededException) and still was after 5 attempts "
        "over 15 s"
    )


def test_denied_permission_names_the_action_and_the_role():
    explorer, stubber, slept = stubbed()
    denied = (
        "User: arn:aws:sts::123456789012:assumed-role/parhelion-accounting/botocore-session-1 is not "
        "authorized to perform: ce:GetCostAndUsage on resource: arn:aws:ce:us-east-1:123456789012:/"
        "GetCostAndUsage because no identity-based policy allows the ce:GetCostAndUsage action"
    )
    stubber.add_client_error("get_cost_and_usage", "AccessDeniedException", denied, 400)
    with stubber, pytest.raises(CostExplorerError) as raised:
        explorer.daily_bill(FIRST, LAST)
    message = str(raised.value)
    assert message.startswith("Cost Explorer denied ce:GetCostAndUsage: User: arn:aws:sts::")
    assert "Grant ce:GetCostAndUsage (read-only) to the role parhelion-accounting" in message
    assert slept == []  # a denial is not retried


def _files(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_cli_table_and_csv_write_nothing_to_the_ledger(story, capsys):
    from platform_tools.cli.main import build_parser

    state = story / "state"
    before = _files(state)
    base = ["--config", str(story / "platform.yaml"), "--state-dir", str(state)]
    outputs = {}
    for extra in ([], ["--csv", "--group", "researchers"], ["--fold"]):
        args = build_parser().parse_args(
            ["cost", "reconcile", "--since", "2026-11-20", "--until", "2026-11-22", *base, *extra]
        )
        explorer, stubber, _ = stubbed()
        recorded_bill(stubber)
        with stubber:
            assert args.func(args, explorer=explorer) == 0
        outputs[" ".join(extra)] = capsys.readouterr().out
    assert _files(state) == before  # the same files, byte for byte (no WAL, no journal left)

    table = outputs[""]
    assert "rule      buckets: users pay what the ledger charged them" in table
    assert "2026-11-22    no data" in table
    assert "The cost rule's error" in table
    csv_rows = outputs["--csv --group researchers"].splitlines()
    assert csv_rows[0].startswith("date,rule,estimated,bill_usd,users_usd,placeholders_usd,system_pods_usd")
    assert "group_charges_usd,group_share_usd" in csv_rows[0] and len(csv_rows) == 4
    assert "rule      fold: the 2i2c rule" in outputs["--fold"]


def test_a_read_only_ledger_refuses_writes(story):
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    ledger = open_read_only(f"sqlite:///{story / 'state' / 'accounting.sqlite'}")
    with (
        pytest.raises(OperationalError, match="readonly|read-only|query_only"),
        ledger.engine.begin() as connection,
    ):
        connection.execute(text("DELETE FROM usage"))
    ledger.close()
