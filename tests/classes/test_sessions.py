"""Which class sessions are due: prewarm before each, release after, in the course's timezone,
on the days of its window, once each."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from platform_tools.classes.sessions import SessionScheduler, due
from platform_tools.config import parse_platform

pytestmark = pytest.mark.unit
UTC = dt.UTC


@pytest.fixture
def config(example_text):
    """A class in Paris: 09:00-12:00 and 14:00-17:00, 30 March to 3 April 2026 (summer time
    starts on 29 March: Paris is UTC+2 that week)."""
    school = """
  school:
    members: [student1, student2]
    profiles: [small]
    budget: {usd: 5, period: course, course: {start: 2026-03-30, end: 2026-04-03}}
    course: {sessions: ["09:00-12:00", "14:00-17:00"], timezone: Europe/Paris, prewarm_minutes: 20}
"""
    marker = "\n# Per-user exceptions"
    return parse_platform(example_text.replace(marker, school + marker, 1))


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-03-30T06:39:00", []),  # 08:39 in Paris: too early
        ("2026-03-30T06:40:00", [("prewarm", "2026-03-30T07:00:00+00:00")]),  # 08:40
        ("2026-03-30T06:59:59", [("prewarm", "2026-03-30T07:00:00+00:00")]),
        ("2026-03-30T07:05:00", []),  # the session started; servers are taking the room
        ("2026-03-30T07:10:00", [("release", "2026-03-30T07:00:00+00:00")]),
        ("2026-03-30T11:45:00", [("prewarm", "2026-03-30T12:00:00+00:00")]),  # before 14:00
        ("2026-03-29T06:45:00", []),  # the day before the window
        ("2026-04-04T06:45:00", []),  # the day after
    ],
)
def test_due(config, now, expected):
    assert [(a.action, a.session_start.isoformat()) for a in due(config, at(now))] == expected


def test_actions_repeat_while_due_and_a_closed_class_never(config):
    calls = []

    async def prewarm(cfg, name):
        calls.append(("prewarm", name))

    async def release(cfg, name):
        calls.append(("release", name))

    scheduler = SessionScheduler(lambda: config, prewarm, release)
    for minute in ("06:40", "06:41", "06:59", "07:10", "07:30"):
        asyncio.run(scheduler.run_once(at(f"2026-03-31T{minute}:00")))
    # idempotent actions, re-applied at every tick while due (a helm upgrade cannot undo them)
    assert calls == [("prewarm", "school")] * 3 + [("release", "school")] * 2
    assert len(scheduler.done) == 2  # logged once each

    data = config.model_dump(mode="json", exclude_none=True)
    data["groups"]["school"]["course"]["status"] = "closed"
    closed = parse_platform(json.dumps(data))
    assert due(closed, at("2026-03-31T06:45:00")) == []
