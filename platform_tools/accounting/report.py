"""What the spend page, the JSON API, the CLI and CSV exports say about a user.

One function builds the facts (``user_report``); the views only format them, so a
number on the page, in the API and in `parhelion cost report` is the same number.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from platform_tools.accounting.budgets import Standing, standings, user_standing
from platform_tools.accounting.enforcer import CAP
from platform_tools.accounting.storage import StorageStanding
from platform_tools.config.models import PlatformConfig
from platform_tools.contract.exports import csv_text
from platform_tools.ledger.store import Ledger

#: Events a page shows at once; older ones are a page further (``events_before``).
EVENTS_PER_PAGE = 50


def user_report(
    config: PlatformConfig,
    ledger: Ledger,
    username: str,
    now: datetime | None = None,
    days: int = 14,
    events_before: int | None = None,
    storage: StorageStanding | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    standing = user_standing(config, ledger, username, now)
    own = standing.own
    stops = _stops_at(ledger, username, standing.standings)
    running = [
        {
            "kind": row.kind,
            "description": row.description,
            "rate_per_hour_usd": round(row.rate_per_hour, 6),
            "since": datetime.fromtimestamp(row.started_at, UTC).isoformat(),
            "cost_so_far_usd": round(row.rate_per_hour * (row.last_seen_at - row.started_at) / 3600, 6),
        }
        for row in ledger.lifetimes(username, running_only=True)
    ]
    first_day = (now - timedelta(days=days - 1)).date()
    daily = [
        {"date": day.isoformat(), "usd": round(usd, 6)}
        for day, usd in ledger.daily_spend(username, first_day, now.date())
    ]
    newest = ledger.events(username, limit=EVENTS_PER_PAGE, before_id=events_before)
    events = [
        {
            "id": e.id,
            "at": datetime.fromtimestamp(e.at, UTC).isoformat(),
            "last_at": datetime.fromtimestamp(e.last_at or e.at, UTC).isoformat(),
            "count": e.count or 1,
            "action": e.action,
            "rule": e.rule,
            "message": e.message,
        }
        for e in newest
    ]
    return {
        "user": username,
        "groups": standing.policy.groups,
        "profiles": standing.policy.profiles,
        "budget": None
        if own is None
        else {
            "usd": own.cap_usd,
            "period": standing.policy.budget.period if standing.policy.budget else None,
            "period_start": own.period.start.isoformat(),
            "resets_at": own.period.end.isoformat(),
            "spent_usd": round(own.spend_usd, 6),
            "left_usd": round(max(0.0, own.cap_usd - own.spend_usd), 6),
            "percent": round(own.percent, 2),
            "warnings_reached": own.thresholds_reached,
            "capped": own.capped,
            # when the enforcer stops what runs (None: not capped, or no stop, or not yet claimed)
            "stops_at": stops.get(own.scope),
        },
        "group_totals": [
            {
                "group": s.scope[6:],
                "usd": s.cap_usd,
                "spent_usd": round(s.spend_usd, 6),
                "percent": round(s.percent, 2),
                "capped": s.capped,
                "stops_at": stops.get(s.scope),
            }
            for s in standing.standings
            if s.scope.startswith("group:")
        ],
        "quota": standing.policy.quota.model_dump(),
        # the home against the storage quota, as last measured (one machine; None: not known)
        "storage": None
        if storage is None
        else {
            "used_gib": round(storage.size.used_gib, 4),
            "quota_gib": storage.quota_gib,
            "percent": round(storage.percent, 1),
            "complete": storage.size.complete,
            "over": storage.over,
            "measured_at": datetime.fromtimestamp(storage.size.at, UTC).isoformat(),
            "text": storage.describe(),
        },
        "running": running,
        "running_rate_per_hour_usd": round(sum(r["rate_per_hour_usd"] for r in running), 6),
        "daily": daily,
        "events": events,
        # the id to ask ``events_before`` for the page before this one (None: no older events)
        "events_older": events[0]["id"] if len(events) == EVENTS_PER_PAGE else None,
    }


def _stops_at(ledger: Ledger, username: str, items: list[Standing]) -> dict[str, str]:
    """When each capped scope's grace ends, as the enforcer decides it: the time its cap notice
    was claimed plus ``grace_minutes`` (``enforcer.Enforcer.decide``). A page shows the time
    left; only caps that stop work (``refuse-new-and-stop``) and whose notice is claimed have one."""
    stopping = {
        f"{s.period.key}:{s.scope}": s for s in items if s.capped and s.on_hard_cap == "refuse-new-and-stop"
    }
    if not stopping:
        return {}
    claimed = ledger.notices_claimed(stopping)
    found = {}
    for key, item in stopping.items():
        capped_at = claimed.get((username, key, CAP))
        if capped_at is not None:
            found[item.scope] = datetime.fromtimestamp(capped_at + 60 * item.grace_minutes, UTC).isoformat()
    return found


def all_users_rows(
    config: PlatformConfig, ledger: Ledger, now: datetime | None = None
) -> list[dict[str, Any]]:
    """One row per user for the admin view and CSV export (a few queries for everyone)."""
    now = now or datetime.now(UTC)
    rates = ledger.rates_by_user()
    totals = ledger.spend_by_user(0, now.timestamp())
    users = config.allowed_users | set(totals) | set(rates)
    rows = []
    for username, standing in sorted(standings(config, ledger, users, now).items()):
        own = standing.own
        rows.append(
            {
                "user": username,
                "groups": " ".join(standing.policy.groups),
                "spent_usd": round(own.spend_usd if own else totals.get(username, 0.0), 6),
                "budget_usd": own.cap_usd if own else "",
                "percent": round(own.percent, 2) if own else "",
                "period": standing.policy.budget.period if own and standing.policy.budget else "",
                "running_rate_per_hour_usd": round(rates.get(username, 0.0), 6),
                "capped": own.capped if own else False,
            }
        )
    return rows


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV for a spreadsheet (cells that would run as formulas neutralised)."""
    if not rows:
        return ""
    header = list(rows[0])
    return csv_text(header, ([row[name] for name in header] for row in rows))
