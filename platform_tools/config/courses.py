"""Courses: a group that is a class (summer school, workshop) in platform.yaml.

A class is a group like any other - members (the roster), profiles, a per-student quota, a
budget whose period is the course window, ``group_usd`` as the class budget - plus what
only a class has: its daily sessions (for prewarming before 9:00), the image its servers
and Dask clusters run, its materials (a git repository pulled into every home,
``config.materials``), what happens to homes when it closes, and whether it is still open.
``parhelion class close`` sets ``status: closed``; members of closed classes cannot log in.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from platform_tools.config.materials import CourseMaterials
from platform_tools.config.models_base import Name, StrictModel

SESSION_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"


class CourseSettings(StrictModel):
    """What makes a group a class."""

    title: str = Field("", description="The course's name as people say it.")
    timezone: str = Field(
        "UTC", description="Where the sessions' times are (an IANA zone, e.g. Europe/Paris)."
    )
    sessions: list[str] = Field(
        default_factory=list,
        description="Daily session times, HH:MM-HH:MM in the course's timezone (e.g. 09:00-12:00).",
    )
    image: Name | None = Field(
        None,
        description="Key in `images` the class's servers and Dask clusters run (default: the profile's).",
    )
    homes: Literal["keep", "archive", "delete"] = Field(
        "archive", description="At close: keep homes, archive them (tar.gz) and delete, or delete."
    )
    prewarm_minutes: int = Field(
        20, ge=0, le=240, description="Minutes before each session to make room for the whole class."
    )
    status: Literal["open", "closed"] = Field("open", description="closed: members can no longer log in.")
    materials: CourseMaterials | None = Field(
        None,
        description="A git repository (and branch) pulled into every student's home at prewarm, "
        "with nbgitpuller's merge rules (their edits kept); `class show` prints its nbgitpuller link.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {zone!r} (use an IANA name such as Europe/Paris)") from None
        return zone

    @field_validator("sessions")
    @classmethod
    def _session_times(cls, sessions: list[str]) -> list[str]:
        for session in sessions:
            if not re.fullmatch(SESSION_PATTERN, session):
                raise ValueError(f"session {session!r} is not HH:MM-HH:MM (24-hour), e.g. 09:00-12:00")
            start, end = session.split("-")
            if end <= start:
                raise ValueError(f"session {session!r} ends before it starts")
        return sessions

    @model_validator(mode="after")
    def _sessions_do_not_overlap(self) -> CourseSettings:
        spans = sorted(s.split("-") for s in self.sessions)
        for (_, first_end), (second_start, _) in zip(spans, spans[1:], strict=False):
            if second_start < first_end:
                raise ValueError(
                    f"sessions overlap: one ends at {first_end}, the next starts at {second_start}"
                )
        return self

    def session_spans(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The day's sessions as UTC datetimes."""
        zone = ZoneInfo(self.timezone)
        spans = []
        for session in self.sessions:
            start, end = (dt.time.fromisoformat(t) for t in session.split("-"))
            spans.append(
                (
                    dt.datetime.combine(day, start, zone).astimezone(dt.UTC),
                    dt.datetime.combine(day, end, zone).astimezone(dt.UTC),
                )
            )
        return spans
