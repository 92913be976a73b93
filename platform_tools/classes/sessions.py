"""Room before every session, without anyone at a keyboard at 8:40.

The accounting service (always running, on one machine and on Kubernetes) asks every half
minute which classes have a session about to start: from ``prewarm_minutes`` before it,
the class is prewarmed (locally: hub users and homes; on Kubernetes: the placeholders,
sized to the class's profile and scaled to its roster); ten minutes after the start, once
the students' servers have taken the room, the placeholders are released. Each action
runs once per session; sessions are in the course's timezone, on the days of its window.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from platform_tools.config import PlatformConfig

log = logging.getLogger(__name__)
RELEASE_AFTER = dt.timedelta(minutes=10)

Action = Callable[[PlatformConfig, str], Awaitable[object]]


@dataclass(frozen=True)
class SessionAction:
    group: str
    action: Literal["prewarm", "release"]
    session_start: dt.datetime  # UTC

    @property
    def key(self) -> str:
        return f"{self.group}:{self.session_start.isoformat()}:{self.action}"


def due(config: PlatformConfig, now: dt.datetime) -> list[SessionAction]:
    """What should happen now, for every open class with sessions today (in its timezone)."""
    found = []
    for name, group in config.groups.items():
        course = group.course
        if course is None or course.status != "open" or not course.sessions or group.budget is None:
            continue
        window = group.budget.course
        today = now.astimezone(ZoneInfo(course.timezone)).date()
        for day in (today - dt.timedelta(days=1), today, today + dt.timedelta(days=1)):
            if not window.start <= day <= window.end:
                continue
            for start, end in course.session_spans(day):
                if start - dt.timedelta(minutes=course.prewarm_minutes) <= now < start:
                    found.append(SessionAction(name, "prewarm", start))
                elif start + RELEASE_AFTER <= now < end:
                    found.append(SessionAction(name, "release", start))
    return found


class SessionScheduler:
    """Runs the due actions at every tick while they are due: both are idempotent (users and
    homes that exist are left alone; the placeholders are patched to what they already are),
    so a failure, a restart of the service or a `helm upgrade` resetting the placeholders in
    the middle of a prewarm is corrected within a tick. Each is logged once per session."""

    def __init__(self, config: Callable[[], PlatformConfig], prewarm: Action, release: Action | None = None):
        self.config = config
        self.prewarm = prewarm
        self.release = release
        self.done: set[str] = set()

    async def run_once(self, now: dt.datetime | None = None) -> list[SessionAction]:
        now = now or dt.datetime.now(dt.UTC)
        config = self.config()
        ran = []
        for action in due(config, now):
            handler = self.prewarm if action.action == "prewarm" else self.release
            if handler is None:
                continue
            await handler(config, action.group)
            if action.key not in self.done:
                log.info(
                    "class %s: %s for the session at %s", action.group, action.action, action.session_start
                )
                self.done.add(action.key)
            ran.append(action)
        return ran
