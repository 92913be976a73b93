"""Checks that span sections of platform.yaml: names that must refer to something.

Pydantic validates each field on its own; whether ``profiles.small.image`` names an
entry of ``images`` needs the whole file. These checks return every problem at once,
each with the exact path of the offending field, so a person fixes them in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from platform_tools.config.policy import groups_of, resolve_budget

if TYPE_CHECKING:  # pragma: no cover
    from platform_tools.config.models import PlatformConfig

Loc = tuple[str | int, ...]


class ReferenceIssues(ValueError):
    """Raised by the model when cross-references do not resolve.

    Carries each issue's path so the loader can point at the right line; its string
    form still reads well where it surfaces as a plain pydantic error.
    """

    def __init__(self, issues: list[tuple[Loc, str]]):
        self.issues = issues
        super().__init__("; ".join(f"{'.'.join(str(p) for p in loc)}: {message}" for loc, message in issues))


def _known(names: Iterable[str]) -> str:
    listed = sorted(names)
    return f"known: {', '.join(listed)}" if listed else "none are defined"


def _duplicates(loc: Loc, values: list[str]) -> list[tuple[Loc, str]]:
    """Each repeat of an earlier value, located at the repeat."""
    first: dict[str, int] = {}
    issues = []
    for index, value in enumerate(values):
        if value in first:
            issues.append((loc + (index,), f"{value!r} is already listed at [{first[value]}]"))
        else:
            first[value] = index
    return issues


def reference_issues(config: PlatformConfig) -> list[tuple[Loc, str]]:
    """Every unresolved name, duplicate or ambiguity in ``config``, with its path."""
    issues: list[tuple[Loc, str]] = []

    for name, profile in config.profiles.items():
        if profile.image not in config.images:
            issues.append(
                (
                    ("profiles", name, "image"),
                    f"unknown image {profile.image!r} ({_known(config.images)})",
                )
            )

    gateway_image = config.dask_gateway.image
    if gateway_image is not None and gateway_image not in config.images:
        issues.append(
            (("dask_gateway", "image"), f"unknown image {gateway_image!r} ({_known(config.images)})")
        )

    defaults = [name for name, profile in config.profiles.items() if profile.default]
    for extra in defaults[1:]:
        issues.append(
            (
                ("profiles", extra, "default"),
                f"only one profile can be the default; {defaults[0]!r} already is",
            )
        )

    for group_name, group in config.groups.items():
        for index, profile in enumerate(group.profiles or []):
            if profile not in config.profiles:
                issues.append(
                    (
                        ("groups", group_name, "profiles", index),
                        f"unknown profile {profile!r} ({_known(config.profiles)})",
                    )
                )
        issues += _duplicates(("groups", group_name, "members"), group.members)
        issues += _class_issues(config, group_name, group)

    issues += _duplicates(("hub", "admin_users"), config.hub.admin_users)
    issues += _duplicates(("hub", "users"), config.hub.users)

    default_archives = [name for name, archive in config.archives.items() if archive.default]
    for extra in default_archives[1:]:
        issues.append(
            (
                ("archives", extra, "default"),
                f"only one archive can be the default; {default_archives[0]!r} already is",
            )
        )

    issues += _user_override_issues(config)
    issues += _course_overlap_issues(config)

    # One local S3 server serves every local bucket, so they share one access mode.
    local = [(name, archive) for name, archive in config.archives.items() if archive.local]
    for name, archive in local[1:]:
        if archive.access != local[0][1].access:
            issues.append(
                (
                    ("archives", name, "access"),
                    f"local archives share one S3 server: use {local[0][1].access!r} as "
                    f"archives.{local[0][0]} does",
                )
            )

    ports = config.local.ports.model_dump()
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port is None:
            continue
        if port in seen:
            issues.append(
                (("local", "ports", key), f"port {port} is already used by local.ports.{seen[port]}")
            )
        else:
            seen[port] = key
    return issues


def _class_issues(config: PlatformConfig, name: str, group) -> list[tuple[Loc, str]]:
    """A class needs its profile, a budget over its course window, and a known image."""
    if group.course is None:
        return []
    loc: Loc = ("groups", name)
    issues: list[tuple[Loc, str]] = []
    if not group.profiles:
        issues.append((loc + ("profiles",), "a class names its profile (profiles: [small])"))
    if group.budget is None or group.budget.period != "course":
        issues.append(
            (
                loc + ("budget",),
                "a class has a budget over its window (period: course, course: {start:, end:})",
            )
        )
    image = group.course.image
    if image is not None and image not in config.images:
        issues.append((loc + ("course", "image"), f"unknown image {image!r} ({_known(config.images)})"))
    return issues


def _user_override_issues(config: PlatformConfig) -> list[tuple[Loc, str]]:
    issues: list[tuple[Loc, str]] = []
    known_users = config.allowed_users
    for username, override in config.users.items():
        loc: Loc = ("users", username)
        if username not in known_users:
            issues.append(
                (
                    loc,
                    f"{username!r} is not a user of this hub (list them in hub.users, "
                    "hub.admin_users or a group's members)",
                )
            )
        group_name = override.primary_group
        if group_name is not None:
            group = config.groups.get(group_name)
            if group is None:
                issues.append(
                    (loc + ("primary_group",), f"unknown group {group_name!r} ({_known(config.groups)})")
                )
            elif username not in group.members:
                issues.append(
                    (loc + ("primary_group",), f"{username!r} is not a member of group {group_name!r}")
                )
            elif group.budget is None:
                issues.append((loc + ("primary_group",), f"group {group_name!r} has no budget"))
        for index, profile in enumerate(override.profiles or []):
            if profile not in config.profiles:
                issues.append(
                    (loc + ("profiles", index), f"unknown profile {profile!r} ({_known(config.profiles)})")
                )
        if override.budget is not None:
            try:
                resolve_budget(config, username)
            except ValueError as exc:
                issues.append((loc + ("budget",), str(exc).splitlines()[-1].strip()))
    return issues


def _course_overlap_issues(config: PlatformConfig) -> list[tuple[Loc, str]]:
    """Two course budgets of one user must not overlap: which would their spend count to?"""
    issues: list[tuple[Loc, str]] = []
    reported: set[tuple[str, str]] = set()
    for username in sorted(config.allowed_users):
        courses = [
            (name, config.groups[name].budget.course)
            for name in groups_of(config, username)
            if config.groups[name].budget is not None and config.groups[name].budget.course is not None
        ]
        for i, (first, first_window) in enumerate(courses):
            for second, second_window in courses[i + 1 :]:
                if (first, second) in reported or not first_window.overlaps(second_window):
                    continue
                reported.add((first, second))
                issues.append(
                    (
                        ("groups", second, "budget", "course"),
                        f"overlaps the course window of group {first!r} "
                        f"({first_window.start} to {first_window.end}); {username!r} is in both",
                    )
                )
    return issues
