"""The enforcer: warns at thresholds, and stops what runs once a hard cap's grace is over.

Each pass looks at every user with a budget. A threshold crossed in a period is told
once (a claimed notice, recorded as a ``warn`` event). The first pass that finds a cap
crossed claims the cap's notice (per period and scope: the user's own budget or a group
total), whose time starts the grace period, and records a ``cap`` event; a pass after the
grace stops the user's servers and Dask clusters (``refuse-new-and-stop``) and records a
``stop`` event saying why. Refusing new servers and clusters needs no pass: the checks
read the same standing when asked.

On one machine the pass also tells each home's storage thresholds as they are crossed
(``storage.storage_notices``: once per crossing, re-armed when the home went back under);
storage never stops anything.

A pass reads the ledger in a few queries for all users at once (``budgets.standings``)
and off the event loop (the service's web handlers keep answering the hub meanwhile).
Stopping servers and stopping clusters are separate actions: one failing (the hub does
not know the user, the gateway does not answer) never keeps the other from running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from platform_tools.accounting.budgets import Standing, standings
from platform_tools.accounting.storage import STORAGE_KEY, StorageGauge, storage_notices
from platform_tools.config.models import PlatformConfig
from platform_tools.ledger.store import REPEAT_WINDOW_SECONDS, Ledger, NewNotice

log = logging.getLogger(__name__)

#: The notice threshold that marks the hard cap itself (warnings use their percentages).
CAP = -1.0


@dataclass
class Actions:
    """How to stop a user's things; returns what was stopped, for the record."""

    stop_servers: Callable[[str], Awaitable[list[str]]]
    stop_clusters: Callable[[str], Awaitable[list[str]]]


def describe(standing: Standing) -> str:
    """The sentence a person reads about one cap: whose, how much of it, when it resets."""
    whose = "your budget" if standing.scope == "user" else f"group {standing.scope[6:]}'s total budget"
    if standing.outside is not None:
        last = (standing.period.end - timedelta(days=1)).date()
        when = "has not started yet" if standing.outside == "before" else "has ended"
        return (
            f"{whose} is for the course from {standing.period.start:%Y-%m-%d} to {last:%Y-%m-%d} "
            f"(UTC), which {when}"
        )
    return (
        f"{whose}: ${standing.spend_usd:.2f} of ${standing.cap_usd:.2f} spent "
        f"({standing.percent:.0f}%) this period, which resets {standing.period.end:%Y-%m-%d %H:%M} UTC"
    )


@dataclass
class Pass:
    """What one pass decided: notices to claim (with their events) and users to stop."""

    notices: list[NewNotice] = field(default_factory=list)
    stops: list[tuple[str, Standing]] = field(default_factory=list)
    rearm: list[tuple[str, str, float]] = field(default_factory=list)  # storage notices to tell again


class Enforcer:
    def __init__(
        self,
        ledger: Ledger,
        actions: Actions,
        config: Callable[[], PlatformConfig],
        storage: StorageGauge | None = None,
    ):
        self.ledger = ledger
        self.actions = actions
        self.config = config
        self.storage = storage  # one machine's homes; None where volumes hold their own size

    async def run_once(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        config = self.config()
        decided = await asyncio.to_thread(self.decide, config, now)
        for username, item in decided.stops:
            try:
                await self.stop(config, username, item, now)
            except Exception:  # one user's trouble must not stop enforcement for others
                log.exception("enforcement failed for %s", username)

    def decide(self, config: PlatformConfig, now: datetime) -> Pass:
        """The pass's ledger work (blocking; runs in a thread): standings, notices, stops."""
        running = self.ledger.running_by_user()
        users = config.allowed_users | set(running)
        current = standings(config, self.ledger, users, now)
        keys = {f"{item.period.key}:{item.scope}" for s in current.values() for item in s.standings}
        claimed = self.ledger.notices_claimed(keys | ({STORAGE_KEY} if self.storage else set()))
        at = now.timestamp()
        decided = Pass()
        contact = config.accounting.contact
        for username, standing in sorted(current.items()):
            for item in standing.standings:
                key = f"{item.period.key}:{item.scope}"
                for mark in item.thresholds_reached if item.outside is None else []:
                    if (username, key, mark) not in claimed:
                        decided.notices.append(
                            NewNotice(
                                username,
                                key,
                                mark,
                                "warn",
                                f"budget-{mark:g}%",
                                f"{mark:g}% of {describe(item)}.",
                                item.spend_usd,
                                item.cap_usd,
                            )
                        )
                if not item.capped:
                    continue
                capped_at = claimed.get((username, key, CAP))
                if capped_at is None:
                    capped_at = at
                    decided.notices.append(
                        NewNotice(
                            username,
                            key,
                            CAP,
                            "cap",
                            "budget-cap" if item.outside is None else "course-window",
                            _cap_message(item, contact),
                            item.spend_usd,
                            item.cap_usd,
                        )
                    )
                if item.on_hard_cap != "refuse-new-and-stop" or at < capped_at + 60 * item.grace_minutes:
                    continue
                if any(kind != "storage" for kind in running.get(username, ())):
                    decided.stops.append((username, item))
        if self.storage is not None:
            told = {(user, mark) for user, key, mark in claimed if key == STORAGE_KEY}
            tell, decided.rearm = storage_notices(config, self.storage.standings(config), told)
            decided.notices += tell
        try:
            if decided.rearm:
                self.ledger.release_notices(decided.rearm)
            self.ledger.claim_notices(decided.notices, at)
        except Exception:  # a full disk must not keep the stops due from happening
            log.exception(
                "could not record %d notices; stopping what is due all the same", len(decided.notices)
            )
        return decided

    async def stop(self, config: PlatformConfig, username: str, item: Standing, now: datetime) -> None:
        """Stop the user's servers, then their clusters, each whatever the other did."""
        stopped: list[str] = []
        failed: list[str] = []
        for what, action in (
            ("servers", self.actions.stop_servers),
            ("clusters", self.actions.stop_clusters),
        ):
            try:
                stopped += await action(username)
            except Exception as exc:
                log.warning("could not stop the %s of %s: %s", what, username, exc)
                failed.append(f"{what} ({type(exc).__name__}: {exc})")
        if not stopped and not failed:
            return
        message = (
            (f"Stopped {', '.join(stopped)}" if stopped else "Tried to stop what runs")
            + f": the grace period after the hard cap ended ({describe(item)})."
            + (f" Could not stop {'; '.join(failed)}: retried next pass." if failed else "")
            + f" Contact {config.accounting.contact} for more."
        )
        await asyncio.to_thread(
            self.ledger.record_event,
            username,
            "stop" if stopped else "stop-failed",
            "budget-cap" if item.outside is None else "course-window",
            message,
            item.spend_usd,
            item.cap_usd,
            now.timestamp(),
            merge_within=None if stopped else REPEAT_WINDOW_SECONDS,
        )
        log.warning(
            "stopped %s of %s over budget%s", stopped, username, f"; failed: {failed}" if failed else ""
        )


def _cap_message(item: Standing, contact: str) -> str:
    stops = item.on_hard_cap == "refuse-new-and-stop"
    head = "Hard cap reached on " if item.outside is None else "Outside the course window: "
    return (
        f"{head}{describe(item)}. New servers and clusters are refused"
        + (f"; running ones stop in {item.grace_minutes:g} min." if stops else ".")
        + f" Contact {contact} for more."
    )
