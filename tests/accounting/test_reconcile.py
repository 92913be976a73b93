"""The reconciliation itself: a pure function over the bill's days and the ledger's, checked
on small hand-made days whose every cent is worked out here."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from platform_tools.accounting.reconcile import (
    FOLDED,
    IDLE,
    NETWORK,
    OTHER,
    PLACEHOLDERS,
    STORAGE,
    SYSTEM,
    UNMETERED,
    USERS,
    classify,
    reconcile,
    report_rows,
    split_cents,
)
from platform_tools.clients.costexplorer import BillDay, BillLine
from platform_tools.ledger.daily import LedgerDay

pytestmark = pytest.mark.unit

DAY = date(2026, 11, 20)
EC2 = "Amazon Elastic Compute Cloud - Compute"


def line(service: str, usage_type: str, amount: str) -> BillLine:
    return BillLine(service, usage_type, Decimal(amount), "USD")


def bill_day(*lines: BillLine, estimated: bool = False) -> BillDay:
    return BillDay(DAY, estimated, list(lines))


@pytest.mark.parametrize(
    ("service", "usage_type", "bucket"),
    [
        (EC2, "BoxUsage:m6i.xlarge", "compute"),
        (EC2, "SpotUsage:m6i.2xlarge", "compute"),
        (EC2, "USW2-BoxUsage:r6i.2xlarge", "compute"),
        ("EC2 - Other", "EBS:VolumeUsage.gp3", STORAGE),
        ("EC2 - Other", "USW2-EBS:SnapshotUsage", STORAGE),
        ("EC2 - Other", "NatGateway-Hours", NETWORK),
        ("EC2 - Other", "NatGateway-Bytes", NETWORK),
        ("EC2 - Other", "DataTransfer-Regional-Bytes", NETWORK),
        ("Amazon Simple Storage Service", "DataTransfer-Out-Bytes", NETWORK),
        ("Amazon Simple Storage Service", "TimedStorage-ByteHrs", STORAGE),
        ("Amazon Elastic File System", "TimedStorage-ByteHrs", STORAGE),
        ("Elastic Load Balancing", "LoadBalancerUsage", NETWORK),
        ("Amazon Virtual Private Cloud", "PublicIPv4:InUseAddress", NETWORK),
        ("Amazon Elastic Container Service for Kubernetes", "USE1-AmazonEKS-Hours:perCluster", OTHER),
        ("Tax", "", OTHER),
    ],
)
def test_bill_lines_are_sorted_by_service_and_usage_type(service, usage_type, bucket):
    assert classify(service, usage_type) == bucket


def test_cents_left_by_rounding_go_to_the_largest_fractions():
    # 3 x 1/3 of a dollar: 33.33.. each; the one cent left goes to the first (ties: earlier)
    third = Decimal(1) / 3
    assert split_cents([third, third, third], 100) == [34, 33, 33]
    # the largest fraction wins whatever its place; negative parts round down too
    assert split_cents([Decimal("0.101"), Decimal("0.108"), Decimal("-0.005")], 20) == [10, 11, -1]
    # rows summing to a bill that was rounded half-even
    parts = [Decimal("1.234"), Decimal("2.345"), Decimal("3.456")]
    assert sum(split_cents(parts, 704)) == 704


def test_a_day_in_buckets_sums_to_the_bill_to_the_cent():
    bill = bill_day(
        line(EC2, "BoxUsage:m6i.xlarge", "4.608"),  # compute 4.608
        line("EC2 - Other", "EBS:VolumeUsage.gp3", "0.5"),  # storage 0.5
        line("EC2 - Other", "NatGateway-Hours", "1.08"),  # network 1.08
        line("Amazon Elastic Container Service for Kubernetes", "USE1-AmazonEKS-Hours:perCluster", "2.4"),
    )
    found = LedgerDay(
        DAY,
        users_compute={"ann": 1.2, "ben": 0.6},
        users_storage={"ann": 0.1},
        capacity_usd={"node": 4.5, "placeholder": 0.3, "system": 0.9},
        node_hours=24.0,
    )
    (day,) = reconcile([bill], [found]).days
    assert day.bill_cents == 859  # 4.608 + 0.5 + 1.08 + 2.4 = 8.588
    assert day.rows == [
        (USERS, 190),  # 1.8 compute + 0.1 storage
        (PLACEHOLDERS, 30),
        (SYSTEM, 90),
        (IDLE, 150),  # node 4.5 - (1.8 + 0.3 + 0.9)
        (UNMETERED, 11),  # bill EC2 4.608 - node 4.5 = 0.108 -> 10.8 cents, rounded up: largest fraction
        (STORAGE, 40),  # 0.5 - users' 0.1
        (NETWORK, 108),
        (OTHER, 240),
    ]
    assert sum(c for _, c in day.rows) == day.bill_cents
    # the cost rule's error: 3.0 of the nodes' 4.5 attributed; ledger nodes vs the bill's EC2
    assert (day.node_cents, day.attributed_cents, day.ec2_cents) == (450, 300, 461)
    assert day.attributed_ratio == pytest.approx(3.0 / 4.5)
    assert day.node_to_ec2 == pytest.approx(450 / 461)


def test_fold_gives_users_the_whole_bill_in_proportion():
    bill = bill_day(line(EC2, "BoxUsage:m6i.xlarge", "10"), line("EC2 - Other", "NatGateway-Hours", "0.01"))
    found = LedgerDay(
        DAY, users_compute={"ann": 1.0, "ben": 2.0, "cy": 0.0001}, capacity_usd={"node": 6.0}, node_hours=24
    )
    result = reconcile([bill], [found], fold=True, group=["ann"])
    (day,) = result.days
    assert result.rule == "fold" and "2i2c" in result.rule_text
    assert day.rows == [(USERS, 300), (FOLDED, 701)]  # 10.01 in all
    # ann's share: 1/3.0001 of 10.01 = 3.33655.. ; the three users' shares sum to the bill
    assert day.group_cents == 100 and day.group_share_cents == 334
    assert report_rows(result)[0]["remainder_folded_into_users_usd"] == "7.01"


def test_a_day_without_bill_data_says_so_and_has_no_rows():
    found = LedgerDay(DAY, users_compute={"ann": 1.0}, capacity_usd={"node": 2.0}, node_hours=24)
    result = reconcile([BillDay(DAY, True, [])], [found])
    (day,) = result.days
    assert day.bill_cents is None and day.rows == []
    assert "no Cost Explorer data" in day.notes[0]
    assert result.notes == ["Cost Explorer had no data for any of these days"]
    row = report_rows(result)[0]
    assert row["bill_usd"] == "" and row["users_usd"] == "" and row["users_charged_usd"] == "1.00"


def test_without_nodes_recorded_compute_left_is_unmetered():
    """A ledger from before capacity rows (or one machine): idle, placeholders and system pods
    cannot be told apart, and the note says so; the rows still sum to the bill."""
    bill = bill_day(line(EC2, "BoxUsage:m6i.xlarge", "4.608"))
    found = LedgerDay(DAY, users_compute={"ann": 1.2})
    (day,) = reconcile([bill], [found]).days
    assert dict(day.rows)[UNMETERED] == 341 and dict(day.rows)[IDLE] == 0
    assert sum(c for _, c in day.rows) == day.bill_cents == 461
    assert "recorded no nodes" in day.notes[0]


def test_the_missing_tag_message_names_a_role_that_exists():
    import re

    from platform_tools.accounting.bill import ACTIVATE
    from tests.platform import REPO_ROOT

    named = re.search(r"role (\w+)", ACTIVATE).group(1)
    assert (REPO_ROOT / "ansible" / "roles" / named / "tasks").is_dir(), named
