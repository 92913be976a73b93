"""Budget periods and where a user stands in theirs.

Periods are UTC calendar periods: a day, a week from Monday, a month, or a course
window (its dates, both included). Spend is what the ledger holds for the period;
``standing`` compares it with the cap and the warning thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from platform_tools.config.models import PlatformConfig
from platform_tools.config.policy import UserPolicy, resolve
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
    """A user's spend against one cap (their own, or a group's total)."""

    scope: str  # "user" or "group:<name>"
    spend_usd: float
    cap_usd: float
    period: Period
    warn_at_percent: list[float]
    on_hard_cap: str
    grace_minutes: float

    @property
    def percent(self) -> float:
        return 100.0 * self.spend_usd / self.cap_usd

    @property
    def capped(self) -> bool:
        return self.spend_usd >= self.cap_usd

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
    policy = resolve(config, username)
    standings = []
    if policy.budget is not None:
        period = period_of(policy.budget, at)
        if period is not None:
            spend = ledger.spend(username, period.start_ts, min(period.end_ts, at.timestamp()))
            standings.append(_standing("user", spend, policy.budget.usd, period, policy.budget))
    for group, budget in policy.group_totals.items():
        period = period_of(budget, at)
        if period is None or budget.group_usd is None:
            continue
        members = config.groups[group].members
        spend = sum(
            ledger.spend_by_user(period.start_ts, min(period.end_ts, at.timestamp()), members).values()
        )
        standings.append(_standing(f"group:{group}", spend, budget.group_usd, period, budget))
    return UserStanding(policy, standings)


def _standing(scope: str, spend: float, cap: float, period: Period, budget: Budget) -> Standing:
    return Standing(
        scope,
        spend,
        cap,
        period,
        list(budget.warn_at_percent or []),
        budget.on_hard_cap or "refuse-new-and-stop",
        float(budget.grace_minutes or 0),
    )
