"""Budget periods and where a user stands in theirs.

Periods are UTC calendar periods: a day, a week from Monday, a month, or a course
window (its dates, both included). Spend is what the ledger holds for the period;
``standing`` compares it with the cap and the warning thresholds.

A course budget pays for its course only: outside the window the user's own course
budget counts as capped (new servers and clusters are refused, running ones stop after
the grace), while a class's group total caps nobody outside its window (a TA's other
groups still let them work).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial

from platform_tools.config.models import PlatformConfig
from platform_tools.config.policy import UserPolicy, groups_of, resolve
from platform_tools.config.quotas import Budget
from platform_tools.ledger.store import Ledger


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive
    key: str  # names the period, for notices: "month:2026-11", "course:2026-07-01"

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()

    @property
    def end_ts(self) -> float:
        return self.end.timestamp()


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def period_of(budget: Budget, at: datetime) -> Period | None:
    """The budget period containing ``at``; None outside a course window."""
    day = at.astimezone(UTC).date()
    if budget.period == "day":
        return Period(_midnight(day), _midnight(day + timedelta(days=1)), f"day:{day}")
    if budget.period == "week":
        monday = day - timedelta(days=day.weekday())
        return Period(_midnight(monday), _midnight(monday + timedelta(days=7)), f"week:{monday}")
    if budget.period == "month":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Period(_midnight(first), _midnight(following), f"month:{first:%Y-%m}")
    window = budget.course
    assert window is not None  # guaranteed by the model
    if not window.start <= day <= window.end:
        return None
    return Period(
        _midnight(window.start), _midnight(window.end + timedelta(days=1)), f"course:{window.start}"
    )


@dataclass(frozen=True)
class Standing:
    """A user's spend against one cap (their own, or a group's total).

    ``outside`` is set when the cap is a course budget and ``at`` lies outside its window:
    a course budget pays for the course, so outside it nothing new starts (the rule in
    ``period_of``'s callers; README, "Caps that hold")."""

    scope: str  # "user" or "group:<name>"
    spend_usd: float
    cap_usd: float
    period: Period
    warn_at_percent: list[float]
    on_hard_cap: str
    grace_minutes: float
    outside: str | None = None  # "before" or "after" a course window

    @property
    def percent(self) -> float:
        return 100.0 * self.spend_usd / self.cap_usd

    @property
    def capped(self) -> bool:
        return self.outside is not None or self.spend_usd >= self.cap_usd

    @property
    def thresholds_reached(self) -> list[float]:
        return [mark for mark in self.warn_at_percent if self.percent >= mark]


@dataclass(frozen=True)
class UserStanding:
    policy: UserPolicy
    standings: list[Standing] = field(default_factory=list)

    @property
    def capped(self) -> list[Standing]:
        return [standing for standing in self.standings if standing.capped]

    @property
    def own(self) -> Standing | None:
        return next((s for s in self.standings if s.scope == "user"), None)


def user_standing(config: PlatformConfig, ledger: Ledger, username: str, at: datetime) -> UserStanding:
    """Spend against the user's budget and against each group total they count towards."""
    return standings(config, ledger, [username], at)[username]


def standings(
    config: PlatformConfig, ledger: Ledger, usernames: Iterable[str], at: datetime
) -> dict[str, UserStanding]:
    """``user_standing`` for many users in a few queries: one per distinct budget period
    (most users share the month or their class's window) and one per group total.

    The enforcer and the metrics ask this for every user each pass; asking per user took
    seconds at a few hundred users (issue 17), which is longer than the hub waits.
    """
    policies = {name: resolve(config, name) for name in usernames}
    now = at.timestamp()
    own_periods: dict[str, tuple[Period, str | None]] = {}
    windows: dict[tuple[float, float], list[str]] = defaultdict(list)
    for name, policy in list(policies.items()):
        if policy.budget is None:
            continue
        period, outside = _period_or_window(policy.budget, at)
        if outside is not None and policy.budget_source != "user":
            current = _budget_in_force(config, name, at)
            if current is not None:  # another group's budget (or the default) applies now
                policy = policies[name] = dataclasses.replace(
                    policy, budget=current[0], budget_source=current[1]
                )
                period, outside = _period_or_window(current[0], at)
        own_periods[name] = (period, outside)
        windows[(period.start_ts, max(period.start_ts, min(period.end_ts, now)))].append(name)
    spent: dict[str, float] = {}
    for (start, end), names in windows.items():
        spent.update(_spend_of(ledger, start, end, names))
    group_spend: dict[tuple[str, str], float] = {}
    result = {}
    for name, policy in policies.items():
        items = []
        if name in own_periods:
            period, outside = own_periods[name]
            budget = policy.budget
            assert budget is not None
            items.append(_standing("user", spent.get(name, 0.0), budget.usd, period, budget, outside))
        for group, budget in policy.group_totals.items():
            period = period_of(budget, at)
            if period is None or budget.group_usd is None:
                continue  # a class total counts inside its window only; outside it caps nobody
            key = (group, period.key)
            if key not in group_spend:
                members = config.groups[group].members
                end = min(period.end_ts, now)
                group_spend[key] = ledger.memo_spend(
                    ("group", group, period.start_ts, tuple(members)),
                    end,
                    partial(_total, ledger, period.start_ts, end, members),
                )
            items.append(_standing(f"group:{group}", group_spend[key], budget.group_usd, period, budget))
        result[name] = UserStanding(policy, items)
    return result


def _budget_in_force(config: PlatformConfig, username: str, at: datetime) -> tuple[Budget, str] | None:
    """The first budget of the user's open groups (file order) that is not a course budget
    outside its window, else the default budget; None if there is none. A student of last
    term's course who takes this term's, or a TA of a past class, is not capped by it."""
    for group in groups_of(config, username):
        budget = config.groups[group].budget
        if budget is None or config.groups[group].closed:
            continue
        if budget.period != "course" or period_of(budget, at) is not None:
            return budget, f"group:{group}"
    default = config.accounting.defaults_budget
    if default is not None and (default.period != "course" or period_of(default, at) is not None):
        return default, "defaults"
    return None


def _total(ledger: Ledger, start: float, end: float, names: list[str]) -> float:
    return sum(_spend_of(ledger, start, end, names).values())


def _spend_of(ledger: Ledger, start: float, end: float, names: list[str]) -> dict[str, float]:
    """Spend of ``names`` in [start, end): filtered in SQL for a few, grouped for many."""
    if len(names) > 1000:  # the enforcer's everyone: one grouped scan beats a long IN list
        wanted = set(names)
        return {name: usd for name, usd in ledger.spend_by_user(start, end).items() if name in wanted}
    return ledger.spend_by_user(start, end, names)


def _period_or_window(budget: Budget, at: datetime) -> tuple[Period, str | None]:
    """The period containing ``at``; for a course budget outside its window, the window
    itself and which side of it ``at`` lies on (its notices then get keys of their own, so
    a cap claimed before the course does not start the grace of one inside it)."""
    period = period_of(budget, at)
    if period is not None:
        return period, None
    window = budget.course
    assert window is not None
    side = "before" if at.astimezone(UTC).date() < window.start else "after"
    end = _midnight(window.end + timedelta(days=1))
    return Period(_midnight(window.start), end, f"course-{side}:{window.start}"), side


def _standing(
    scope: str, spend: float, cap: float, period: Period, budget: Budget, outside: str | None = None
) -> Standing:
    return Standing(
        scope,
        spend,
        cap,
        period,
        list(budget.warn_at_percent or []),
        budget.on_hard_cap or "refuse-new-and-stop",
        float(budget.grace_minutes or 0),
        outside,
    )
