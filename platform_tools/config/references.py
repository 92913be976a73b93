"""Checks that span sections of platform.yaml: names that must refer to something.

Pydantic validates each field on its own; whether ``profiles.small.image`` names an
entry of ``images`` needs the whole file. These checks return every problem at once,
each with the exact path of the offending field, so a person fixes them in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .models import PlatformConfig

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
