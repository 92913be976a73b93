"""The ledger set against the AWS bill, per day, so that every dollar of the bill is named.

A pure function (``reconcile``) over the bill's days (``clients.costexplorer.BillDay``) and
the ledger's (``ledger.daily.LedgerDay``); all I/O is the callers'. Per UTC day:

* the bill's lines are sorted into compute (EC2 instances), storage (EBS, EFS, S3), network
  (NAT gateways, data transfer, load balancers, public addresses) and other (the EKS control
  plane, CloudWatch, tax...) by service and usage type (``classify``);
* users are what the ledger charged them (compute and storage);
* the rest is split into named buckets: placeholders, system pods (their shares of their
  nodes by the same cost rule), idle node capacity (the ledger's node price minus every share
  on it), compute not metered (the bill's EC2 minus the ledger's node price: prices that
  moved, discounts, nodes the meter did not see), storage users were not charged for,
  network and other.

Rule "buckets" shows that split. Rule "fold" (the 2i2c rule) folds the remainder into users'
shares in proportion to their charges, so users' shares sum to the bill.

Money is Decimal, then whole cents. Each row is rounded down to the cent and the cents that
leaves are given one by one to the rows with the largest fractions dropped (the largest-
remainder method; ties to the earlier row), so a day's rows sum to its bill rounded
half-even to the cent - exactly, never off by a rounding cent. Per-user folded shares are
rounded the same way, so they too sum to the bill.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from platform_tools.clients.costexplorer import BillDay
from platform_tools.ledger.daily import LedgerDay

USERS = "users"
FOLDED = "remainder folded into users"
PLACEHOLDERS = "placeholders"
SYSTEM = "system pods"
IDLE = "idle node capacity"
UNMETERED = "compute not metered"
STORAGE = "storage"
NETWORK = "network"
OTHER = "other"
BUCKETS = (USERS, PLACEHOLDERS, SYSTEM, IDLE, UNMETERED, STORAGE, NETWORK, OTHER)

RULES = {
    "buckets": "users pay what the ledger charged them; the rest of the bill is named in buckets",
    "fold": "the 2i2c rule: the rest of the bill is folded into users' shares in proportion to their charges",
}

COMPUTE_SERVICES = {"Amazon Elastic Compute Cloud - Compute"}
STORAGE_SERVICES = {
    "Amazon Elastic File System",
    "Amazon Simple Storage Service",
    "Amazon Elastic Block Store",
}
NETWORK_SERVICES = {"AWS Data Transfer", "Elastic Load Balancing", "Amazon Virtual Private Cloud"}
NETWORK_USAGE = (
    "NatGateway",
    "DataTransfer",
    "DataProcessing-Bytes",
    "LoadBalancerUsage",
    "LCUUsage",
    "PublicIPv4",
)
CENT = Decimal("0.01")


def classify(service: str, usage_type: str) -> str:
    """compute, storage, network or other, for one line of the bill."""
    if any(token in usage_type for token in NETWORK_USAGE) or service in NETWORK_SERVICES:
        return NETWORK
    if service in COMPUTE_SERVICES:
        return "compute"
    if "EBS:" in usage_type or service in STORAGE_SERVICES:
        return STORAGE
    return OTHER


def dollars(value: float | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(repr(float(value)))


def to_cents(total: Decimal) -> int:
    """A dollar amount to whole cents, half-even."""
    return int((total / CENT).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def split_cents(parts: Sequence[Decimal], total_cents: int) -> list[int]:
    """``parts`` (dollars) in whole cents summing to ``total_cents``: each rounded down, the
    cents left given to the largest fractions dropped (ties: the earlier part)."""
    raw = [part / CENT for part in parts]
    floors = [int(x.to_integral_value(rounding=ROUND_FLOOR)) for x in raw]
    left = total_cents - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))
    step = 1 if left >= 0 else -1
    for n in range(abs(left)):
        floors[order[n % len(order)] if step > 0 else order[-1 - n % len(order)]] += step
    return floors


@dataclass
class DayReconciliation:
    day: date
    bill_cents: int | None  # None: Cost Explorer had no data for the day
    estimated: bool
    rows: list[tuple[str, int]]  # (bucket, cents), summing to bill_cents
    notes: list[str] = field(default_factory=list)
    users_cents: int = 0  # the ledger's charges to users, as charged
    group_cents: int | None = None  # the group's charges (None: no group asked)
    group_share_cents: int | None = None  # the group's share of the bill under the rule in force
    # the cost rule's own error: node-hours, the ledger's node price, what it attributed
    node_hours: float = 0.0
    node_cents: int = 0
    attributed_cents: int = 0  # users' pods + placeholders + system pods on the nodes
    ec2_cents: int = 0  # the bill's EC2 compute

    @property
    def attributed_ratio(self) -> float | None:
        """Of the nodes' price, the part the cost rule attributed (1 - the idle fraction)."""
        return self.attributed_cents / self.node_cents if self.node_cents else None

    @property
    def node_to_ec2(self) -> float | None:
        """The ledger's node price against the bill's EC2: how far the catalog's prices are."""
        return self.node_cents / self.ec2_cents if self.ec2_cents else None


@dataclass
class Reconciliation:
    rule: str
    days: list[DayReconciliation]
    notes: list[str] = field(default_factory=list)

    @property
    def rule_text(self) -> str:
        return f"{self.rule}: {RULES[self.rule]}"


def reconcile(
    bill: Iterable[BillDay],
    ledger: Iterable[LedgerDay],
    *,
    fold: bool = False,
    group: Iterable[str] | None = None,
) -> Reconciliation:
    """Each ledger day against the bill's day, under the buckets or the fold rule."""
    by_day = {day.day: day for day in bill}
    members = None if group is None else set(group)
    days = [_day(by_day.get(found.day), found, fold, members) for found in ledger]
    result = Reconciliation("fold" if fold else "buckets", days)
    if days and all(d.bill_cents is None for d in days):
        result.notes.append("Cost Explorer had no data for any of these days")
    return result


def _day(bill: BillDay | None, found: LedgerDay, fold: bool, members: set[str] | None) -> DayReconciliation:
    users = {
        u: dollars(found.users_compute.get(u, 0)) + dollars(found.users_storage.get(u, 0))
        for u in set(found.users_compute) | set(found.users_storage)
    }
    users_compute = sum((dollars(v) for v in found.users_compute.values()), Decimal(0))
    users_storage = sum((dollars(v) for v in found.users_storage.values()), Decimal(0))
    users_total = users_compute + users_storage
    placeholders = dollars(found.capacity_usd.get("placeholder", 0))
    system = dollars(found.capacity_usd.get("system", 0))
    nodes = dollars(found.capacity_usd.get("node", 0))
    attributed = users_compute + placeholders + system
    group_total = None if members is None else sum((v for u, v in users.items() if u in members), Decimal(0))
    result = DayReconciliation(
        found.day,
        None,
        False,
        [],
        users_cents=to_cents(users_total),
        group_cents=None if group_total is None else to_cents(group_total),
        node_hours=found.node_hours,
        node_cents=to_cents(nodes),
        attributed_cents=to_cents(attributed),
    )
    result.estimated = bill is not None and bill.estimated
    if bill is None or not bill.lines:
        result.notes.append(
            f"{found.day}: no Cost Explorer data (a day not yet processed - it lags up to 24 hours - "
            "or nothing tagged ran)"
        )
        return result
    spent = {"compute": Decimal(0), STORAGE: Decimal(0), NETWORK: Decimal(0), OTHER: Decimal(0)}
    for line in bill.lines:
        spent[classify(line.service, line.usage_type)] += line.amount
    total = sum(spent.values(), Decimal(0))
    result.bill_cents, result.estimated = to_cents(total), bill.estimated
    result.ec2_cents = to_cents(spent["compute"])
    if found.nodes_recorded:
        compute = [
            (PLACEHOLDERS, placeholders),
            (SYSTEM, system),
            (IDLE, nodes - attributed),
            (UNMETERED, spent["compute"] - nodes),
        ]
        if nodes < attributed:
            result.notes.append(f"{found.day}: shares exceed their nodes' price (pods larger than a node?)")
    else:
        compute = [
            (PLACEHOLDERS, Decimal(0)),
            (SYSTEM, Decimal(0)),
            (IDLE, Decimal(0)),
            (UNMETERED, spent["compute"] - users_compute),
        ]
        result.notes.append(
            f"{found.day}: the meter recorded no nodes, so placeholders, system pods and idle "
            "capacity cannot be told apart: all compute users were not charged for is 'compute not metered'"
        )
    parts = [
        (USERS, users_total),
        *compute,
        (STORAGE, spent[STORAGE] - users_storage),
        (NETWORK, spent[NETWORK]),
        (OTHER, spent[OTHER]),
    ]
    if fold and users_total > 0:
        parts = [(USERS, users_total), (FOLDED, total - users_total)]
    elif fold:
        result.notes.append(f"{found.day}: no user was charged, so nothing can be folded: buckets shown")
    cents = split_cents([amount for _, amount in parts], result.bill_cents)
    result.rows = [(name, c) for (name, _), c in zip(parts, cents, strict=True)]
    if members is not None:
        if fold and users_total > 0:
            names = sorted(users)
            shares = split_cents([users[u] * total / users_total for u in names], result.bill_cents)
            result.group_share_cents = sum(c for u, c in zip(names, shares, strict=True) if u in members)
        else:
            result.group_share_cents = result.group_cents
    return result


def _usd(cents: int | None) -> str:
    return "" if cents is None else f"{cents / 100:.2f}"


def report_rows(result: Reconciliation) -> list[dict]:
    """One row per day for CSV and JSON: the bill, each bucket (summing to it; blank on a day
    without bill data), the group's charges and share, and the cost rule's own error."""
    rows = []
    for day in result.days:
        cents = dict(day.rows)
        row = {"date": day.day.isoformat(), "rule": result.rule, "estimated": day.estimated}
        row["bill_usd"] = _usd(day.bill_cents)
        for bucket in (*BUCKETS, FOLDED):
            row[bucket.replace(" ", "_") + "_usd"] = _usd(
                None if day.bill_cents is None else cents.get(bucket, 0)
            )
        if day.group_cents is not None:
            row["group_charges_usd"] = _usd(day.group_cents)
            row["group_share_usd"] = _usd(day.group_share_cents)
        row["users_charged_usd"] = _usd(day.users_cents)
        row["node_hours"] = f"{day.node_hours:.2f}"
        row["ledger_node_usd"] = _usd(day.node_cents)
        row["attributed_usd"] = _usd(day.attributed_cents)
        ratio = day.attributed_ratio
        row["attributed_to_node"] = "" if ratio is None else f"{ratio:.3f}"
        row["bill_ec2_usd"] = _usd(None if day.bill_cents is None else day.ec2_cents)
        ec2 = day.node_to_ec2
        row["ledger_node_to_ec2"] = "" if ec2 is None else f"{ec2:.3f}"
        rows.append(row)
    return rows
