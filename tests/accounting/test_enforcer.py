"""The enforcer against a real ledger (SQLite) with a controlled clock and recorded actions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from platform_tools.accounting.budgets import period_of
from platform_tools.accounting.enforcer import Actions, Enforcer
from platform_tools.config import parse_platform
from platform_tools.config.quotas import Budget
from platform_tools.ledger.store import Observation
from tests.platform import platform_config_text

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def make_config(grace: str = "0.5", usd: str = "0.01", action: str = "refuse-new-and-stop"):
    return parse_platform(
        platform_config_text(
            **{
                "      usd: 25  ": f"      usd: {usd}  ",
                "      grace_minutes: 5\n": f"      grace_minutes: {grace}\n",
                "      on_hard_cap: refuse-new-and-stop\n": f"      on_hard_cap: {action}\n",
            }
        )
    )


class Recorder:
    def __init__(self):
        self.running = True
        self.stops: list[datetime] = []
        self.now = T0

    def actions(self) -> Actions:
        async def stop_servers(user):
            if not self.running:
                return []
            self.running = False
            self.stops.append(self.now)
            return ["server (default)"]

        async def stop_clusters(user):
            return []

        return Actions(stop_servers, stop_clusters)


def drive(ledger, config, recorder, seconds: int, rate: float = 36.0):
    """A server at $36/h ($0.01/s) runs until stopped; samples and passes every second."""
    enforcer = Enforcer(ledger, recorder.actions(), lambda: config)
    server = Observation("server:demo::t0", "demo", "server", T0.timestamp(), rate)

    async def go():
        for second in range(1, seconds + 1):
            recorder.now = T0 + timedelta(seconds=second)
            ledger.record_sample(recorder.now.timestamp(), [server] if recorder.running else [])
            await enforcer.run_once(recorder.now)

    asyncio.run(go())


def test_warn_once_per_threshold_then_cap_then_stop_after_grace(ledger):
    recorder = Recorder()
    drive(ledger, make_config(grace="0.5"), recorder, seconds=60)
    events = [(e.action, e.rule, round(e.at - T0.timestamp())) for e in ledger.events("demo")]
    assert events == [
        ("warn", "budget-50%", 1),  # $0.01/s against a $0.01 budget: 100% after 1 s
        ("warn", "budget-80%", 1),
        ("warn", "budget-100%", 1),
        ("cap", "budget-cap", 1),
        ("stop", "budget-cap", 31),  # 30 s of grace
    ]
    assert recorder.stops == [T0 + timedelta(seconds=31)]


def test_refuse_new_only_never_stops(ledger):
    recorder = Recorder()
    drive(ledger, make_config(action="refuse-new"), recorder, seconds=40)
    assert recorder.stops == []
    assert [e.action for e in ledger.events("demo")][-1] == "cap"


def test_under_budget_nothing_happens(ledger):
    recorder = Recorder()
    drive(ledger, make_config(usd="100"), recorder, seconds=10)
    assert ledger.events("demo") == [] and recorder.running


@pytest.mark.parametrize(
    ("period", "at", "start", "end"),
    [
        ("day", "2026-11-21T13:00Z", "2026-11-21", "2026-11-22"),
        ("week", "2026-11-21T13:00Z", "2026-11-16", "2026-11-23"),  # Saturday -> Monday
        ("month", "2026-12-31T23:59Z", "2026-12-01", "2027-01-01"),
    ],
)
def test_periods(period, at, start, end):
    window = period_of(Budget(usd=1, period=period), datetime.fromisoformat(at.replace("Z", "+00:00")))
    assert (window.start.date().isoformat(), window.end.date().isoformat()) == (start, end)


def test_course_period_only_inside_the_window():
    budget = Budget(usd=1, period="course", course={"start": "2026-07-01", "end": "2026-07-12"})
    inside = period_of(budget, datetime(2026, 7, 12, 23, tzinfo=UTC))
    assert inside.key == "course:2026-07-01" and inside.end == datetime(2026, 7, 13, tzinfo=UTC)
    assert period_of(budget, datetime(2026, 7, 13, 1, tzinfo=UTC)) is None
