"""The reconciliation run: the bill from Cost Explorer, the ledger read (never written), and
``reconcile`` between them - what `parhelion cost reconcile` and the admin page both call.

Cost Explorer answering nothing for the cluster's tag over the whole window is told apart:
``tag_values`` (the account's cost grouped by the tag, unfiltered) shows whether the cost is
all under the bare ``<key>$`` value (the tag not activated for cost allocation, or nothing
carrying it), under other clusters' values, or absent (no cost at all: days with no data).
"""

from __future__ import annotations

from datetime import date

from platform_tools.accounting.reconcile import Reconciliation, reconcile
from platform_tools.clients.costexplorer import CostExplorer, CostExplorerError
from platform_tools.config.models import PlatformConfig
from platform_tools.ledger.daily import ledger_days
from platform_tools.ledger.store import Ledger

#: Read this once in the Billing console, or let provision.yml's aws_budgets role do it.
ACTIVATE = (
    "activate it for cost allocation once: provision.yml does (role aws_budgets, "
    "ce:UpdateCostAllocationTagsStatus), or Billing > Cost allocation tags, or "
    "`aws ce update-cost-allocation-tags-status --cost-allocation-tags-status TagKey={key},Status=Active`; "
    "costs are tagged from activation on (it takes up to 24 hours), never before"
)


class MissingTag(CostExplorerError):
    """Cost Explorer holds the account's cost, but none of it under the cluster's tag."""


def tag_value(config: PlatformConfig) -> str:
    return config.accounting.reconcile.tag_value or config.name


def explorer_for(config: PlatformConfig, **options) -> CostExplorer:
    settings = config.accounting.reconcile
    return CostExplorer(settings.tag_key, tag_value(config), settings.metric, **options)


def group_members(config: PlatformConfig, group: str) -> list[str]:
    return list(config.groups[group].members)


def missing_tag_message(values: dict, key: str, value: str) -> str | None:
    """Why the tag filter found nothing, from the account's cost per tag value (None: the account
    had no cost at all, which is days with no data, not a missing tag)."""
    costly = {v: amount for v, amount in values.items() if amount > 0}
    if not costly or value in costly:
        return None
    others = sorted(v for v in costly if v)
    if not others:
        return (
            f"Cost Explorer has this account's cost but none of it tagged {key}={value}: all of it is "
            f"under '{key}$' (no value), so the tag is not active for cost allocation or nothing "
            f"carries it; {ACTIVATE.format(key=key)}"
        )
    return (
        f"Cost Explorer has no cost tagged {key}={value}, but some tagged {', '.join(others)}: "
        f"set accounting.reconcile.tag_value to the value provision.yml tags with (parhelion_tags)"
    )


def reconcile_with_bill(
    config: PlatformConfig,
    ledger: Ledger,
    explorer: CostExplorer,
    first: date,
    last: date,
    group: str | None = None,
    fold: bool | None = None,
) -> Reconciliation:
    """The days ``first`` to ``last`` (UTC, included) reconciled. Raises CostExplorerError
    (MissingTag among them) with a message for the admin."""
    bill = explorer.daily_bill(first, last)
    if not any(day.lines for day in bill):
        problem = missing_tag_message(explorer.tag_values(first, last), explorer.tag_key, explorer.tag_value)
        if problem:
            raise MissingTag(problem)
    result = reconcile(
        bill,
        ledger_days(ledger, first, last),
        fold=config.accounting.reconcile.fold if fold is None else fold,
        group=None if group is None else group_members(config, group),
    )
    result.notes.insert(
        0,
        f"bill: Cost Explorer {explorer.metric}, DAILY, tag {explorer.tag_key}={explorer.tag_value}, "
        f"{explorer.requests} request(s)",
    )
    return result
