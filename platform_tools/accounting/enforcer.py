"""The enforcer: warns at thresholds, and stops what runs once a hard cap's grace is over.

Each pass looks at every user with a budget. A threshold crossed in a period is told
once (a claimed notice, recorded as a ``warn`` event). The first pass that finds a cap
crossed claims the cap's notice (per period and scope: the user's own budget or a group
total), whose time starts the grace period, and records a ``cap`` event; a pass after the
grace stops the user's servers and Dask clusters (``refuse-new-and-stop``) and records a
``stop`` event saying why. Refusing new servers and clusters needs no pass: the checks
read the same standing when asked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from platform_tools.accounting.budgets import Standing, user_standing
from platform_tools.config.models import PlatformConfig
from platform_tools.ledger.store import Ledger

log = logging.getLogger(__name__)

#: The notice threshold that marks the hard cap itself (warnings use their percentages).
CAP = -1.0


@dataclass
class Actions:
    """How to stop a user's things; returns what was stopped, for the record."""

    stop_servers: Callable[[str], Awaitable[list[str]]]
    stop_clusters: Callable[[str], Awaitable[list[str]]]


def describe(standing: Standing) -> str:
    whose = "your budget" if standing.scope == "user" else f"group {standing.scope[6:]}'s total budget"
    return (
        f"{whose}: ${standing.spend_usd:.2f} of ${standing.cap_usd:.2f} spent "
        f"({standing.percent:.0f}%) this period, which resets {standing.period.end:%Y-%m-%d %H:%M} UTC"
    )


class Enforcer:
    def __init__(self, ledger: Ledger, actions: Actions, config: Callable[[], PlatformConfig]):
        self.ledger = ledger
        self.actions = actions
        self.config = config

    async def run_once(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        config = self.config()
        users = config.allowed_users | {row.username for row in self.ledger.lifetimes(running_only=True)}
        for username in sorted(users):
            try:
                await self._enforce(config, username, now)
            except Exception:  # one user's trouble must not stop enforcement for others
                log.exception("enforcement failed for %s", username)

    async def _enforce(self, config: PlatformConfig, username: str, now: datetime) -> None:
        standing = user_standing(config, self.ledger, username, now)
        contact = config.accounting.contact
        for item in standing.standings:
            key = f"{item.period.key}:{item.scope}"
            for mark in item.thresholds_reached:
                if self.ledger.claim_notice(username, key, mark, now.timestamp()):
                    self.ledger.record_event(
                        username,
                        "warn",
                        f"budget-{mark:g}%",
                        f"{mark:g}% of {describe(item)}.",
                        item.spend_usd,
                        item.cap_usd,
                        now.timestamp(),
                    )
            if not item.capped:
                continue
            if self.ledger.claim_notice(username, key, CAP, now.timestamp()):
                self.ledger.record_event(
                    username,
                    "cap",
                    "budget-cap",
                    f"Hard cap reached on {describe(item)}. New servers and clusters are refused"
                    + (
                        f"; running ones stop in {item.grace_minutes} min."
                        if item.on_hard_cap == "refuse-new-and-stop"
                        else "."
                    )
                    + f" Contact {contact} for more.",
                    item.spend_usd,
                    item.cap_usd,
                    now.timestamp(),
                )
            if item.on_hard_cap != "refuse-new-and-stop":
                continue
            capped_at = self.ledger.notice_at(username, key, CAP)  # this cap's own, per scope
            if capped_at is None or now.timestamp() < capped_at + 60 * item.grace_minutes:
                continue
            running = [r for r in self.ledger.lifetimes(username, running_only=True) if r.kind != "storage"]
            if not running:
                continue
            servers = await self.actions.stop_servers(username)
            clusters = await self.actions.stop_clusters(username)
            if servers or clusters:
                self.ledger.record_event(
                    username,
                    "stop",
                    "budget-cap",
                    f"Stopped {', '.join(servers + clusters)}: the grace period after the hard cap "
                    f"ended ({describe(item)}). Contact {contact} for more.",
                    item.spend_usd,
                    item.cap_usd,
                    now.timestamp(),
                )
                log.warning("stopped %s of %s over budget", servers + clusters, username)
