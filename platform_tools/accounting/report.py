"""What the spend page, the JSON API, the CLI and CSV exports say about a user.

One function builds the facts (``user_report``); the views only format them, so a
number on the page, in the API and in `parhelion cost report` is the same number.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from platform_tools.accounting.budgets import user_standing
from platform_tools.config.models import PlatformConfig
from platform_tools.contract.exports import csv_text
from platform_tools.ledger.store import Ledger


def user_report(
    config: PlatformConfig, ledger: Ledger, username: str, now: datetime | None = None, days: int = 14
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    standing = user_standing(config, ledger, username, now)
    own = standing.own
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
    events = [
        {
            "at": datetime.fromtimestamp(e.at, UTC).isoformat(),
            "action": e.action,
            "rule": e.rule,
            "message": e.message,
        }
        for e in ledger.events(username)[-50:]
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
        },
        "group_totals": [
            {
                "group": s.scope[6:],
                "usd": s.cap_usd,
                "spent_usd": round(s.spend_usd, 6),
                "percent": round(s.percent, 2),
                "capped": s.capped,
            }
            for s in standing.standings
            if s.scope.startswith("group:")
        ],
        "quota": standing.policy.quota.model_dump(),
        "running": running,
        "running_rate_per_hour_usd": round(sum(r["rate_per_hour_usd"] for r in running), 6),
        "daily": daily,
        "events": events,
    }


def all_users_rows(
    config: PlatformConfig, ledger: Ledger, now: datetime | None = None
) -> list[dict[str, Any]]:
    """One row per user for the admin view and CSV export."""
    now = now or datetime.now(UTC)
    users = config.allowed_users | {row.username for row in ledger.lifetimes()}
    rows = []
    for username in sorted(users):
        report = user_report(config, ledger, username, now, days=1)
        budget = report["budget"] or {}
        rows.append(
            {
                "user": username,
                "groups": " ".join(report["groups"]),
                "spent_usd": budget.get("spent_usd", round(ledger.spend(username, 0, now.timestamp()), 6)),
                "budget_usd": budget.get("usd", ""),
                "percent": budget.get("percent", ""),
                "period": budget.get("period", ""),
                "running_rate_per_hour_usd": report["running_rate_per_hour_usd"],
                "capped": budget.get("capped", False),
            }
        )
    return rows


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV for a spreadsheet (cells that would run as formulas neutralised)."""
    if not rows:
        return ""
    header = list(rows[0])
    return csv_text(header, ([row[name] for name in header] for row in rows))
