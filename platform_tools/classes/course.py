"""A class in platform.yaml, made from a roster: `parhelion class create` and the Ansible
roster play both go through here (platform_tools.classes.roster reads the CSV)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_tools.classes.materials import nbgitpuller_link
from platform_tools.classes.roster import class_group, read_roster
from platform_tools.config import PlatformConfig
from platform_tools.contract.exports import csv_text
from platform_tools.ledger.store import Ledger


class ClassError(ValueError):
    pass


@dataclass
class ClassSpec:
    """Everything `parhelion class create` is told about a class."""

    name: str
    roster: Path
    start: str
    end: str
    profile: str
    budget_usd: float
    class_budget_usd: float | None = None
    sessions: list[str] = field(default_factory=list)
    timezone: str = "UTC"
    image: str | None = None
    quota: dict[str, Any] = field(default_factory=dict)
    homes: str = "archive"
    title: str = ""
    prewarm_minutes: int = 20
    materials: dict[str, str] | None = None  # course.materials: repo, branch, folder

    def group(self) -> dict[str, Any]:
        """The class's group for platform.yaml; RosterError names every bad row."""
        return class_group(
            read_roster(self.roster),
            start=self.start,
            end=self.end,
            budget_usd=self.budget_usd,
            group_usd=self.class_budget_usd,
            profiles=[self.profile],
            quota=self.quota,
            course={
                "title": self.title,
                "timezone": self.timezone,
                "sessions": self.sessions,
                "image": self.image,
                "homes": self.homes,
                "prewarm_minutes": self.prewarm_minutes,
                **({"materials": self.materials} if self.materials else {}),
            },
        )


def class_of(config: PlatformConfig, name: str):
    group = config.groups.get(name)
    if group is None or group.course is None:
        classes = sorted(n for n, g in config.groups.items() if g.course is not None)
        raise ClassError(f"no class {name!r} in platform.yaml (classes: {', '.join(classes) or 'none'})")
    return group


def class_spend(config: PlatformConfig, ledger: Ledger, name: str, now: dt.datetime) -> dict[str, float]:
    """Each student's spend over the course window (so far)."""
    group = class_of(config, name)
    window = group.budget.course  # both days included, UTC, as budgets count it
    start = dt.datetime.combine(window.start, dt.time(), dt.UTC).timestamp()
    end = dt.datetime.combine(window.end + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
    spend = ledger.spend_by_user(start, min(end, now.timestamp()), group.members)
    return {member: spend.get(member, 0.0) for member in group.members}


def describe(
    config: PlatformConfig, name: str, spend: dict[str, float] | None = None, hub_url: str | None = None
) -> str:
    """`parhelion class show`: the class as platform.yaml has it, with spend when known, and
    its materials' nbgitpuller link (from ``hub_url``; without it, the path on any hub)."""
    group = class_of(config, name)
    course, budget = group.course, group.budget
    profile = config.profiles[group.profiles[0]]
    image = config.images[course.image or profile.image]
    lines = [
        f"class     {name}" + (f" ({course.title})" if course.title else ""),
        f"status    {course.status}",
        f"students  {len(group.members)}",
        f"window    {budget.course.start} to {budget.course.end}",
        f"sessions  {', '.join(course.sessions) or 'none listed'} ({course.timezone}); "
        f"room made {course.prewarm_minutes} min before each",
        f"profile   {group.profiles[0]}: {profile.display_name} (${profile.price_per_hour_usd:.3f}/hour)",
        f"image     {image}",
        "quota     "
        + (
            ", ".join(f"{k}={v:g}" for k, v in group.quota.model_dump(exclude_none=True).items())
            if group.quota
            else "none"
        ),
        f"budget    ${budget.usd:g} per student over the course"
        + (f", ${budget.group_usd:g} for the class" if budget.group_usd else ""),
        f"homes     {course.homes} at close",
    ]
    materials = course.materials
    if materials is not None:
        lines += [
            f"materials {materials.repo} (branch {materials.branch}) in ~/{materials.target}, pulled "
            "at prewarm" + (" and at each server start" if materials.pull_on_start else ""),
            f"link      {nbgitpuller_link(hub_url or '', materials)}"
            + ("" if hub_url else "  (after the hub's address: --hub-url)"),
        ]
    if spend is not None:
        total = sum(spend.values())
        lines.append(f"spent     ${total:.2f} in total, ${total / max(len(spend), 1):.2f} per student")
        top = sorted(spend.items(), key=lambda item: -item[1])[:5]
        lines += [f"  {user:<24}${usd:.2f}" for user, usd in top if usd > 0]
    return "\n".join(lines)


def report_csv(spend: dict[str, float], budget_usd: float) -> str:
    """The class's spend per student and in total, for a spreadsheet (cells neutralised)."""
    rows = [
        [user, f"{spend[user]:.4f}", f"{budget_usd:g}", f"{100 * spend[user] / budget_usd:.1f}"]
        for user in sorted(spend)
    ]
    total = sum(spend.values())
    rows.append(
        [
            "TOTAL",
            f"{total:.4f}",
            f"{budget_usd * len(spend):g}",
            f"{100 * total / (budget_usd * max(len(spend), 1)):.1f}",
        ]
    )
    return csv_text(["user", "spent_usd", "budget_usd", "percent_of_budget"], rows)
