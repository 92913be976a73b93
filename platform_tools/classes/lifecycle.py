"""Before and after a class on the local platform: room for everyone, then a clean close.

Prewarm creates the roster's users in the hub and their homes (with the platform's
notebooks), so 9:00 is a login and a server start, not an account creation. Close shuts
the class: members lose access at once (platform.yaml, followed live), running servers are
stopped, homes are archived or deleted as the course says, and a final cost report is
written per student and in total. On Kubernetes, prewarm is the chart's placeholders
(`platform_tools.classes.placeholders`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from platform_tools.classes.course import class_of, class_spend, report_csv
from platform_tools.clients.hubadmin import HubAdmin
from platform_tools.config import load_platform
from platform_tools.config.edit import PlatformChange, change_file
from platform_tools.ledger.store import Ledger
from platform_tools.local.homes import provide_notebooks
from platform_tools.local.runtime import LocalRuntime
from platform_tools.local.statedir import StateDir


@dataclass
class CloseResult:
    stopped: list[str]
    homes: dict[str, str]  # user -> "archived <path>", "deleted", "kept", "none"
    report: Path
    total_usd: float


def _admin(state: StateDir) -> HubAdmin:
    runtime = LocalRuntime.load(state.runtime_file)
    return HubAdmin(runtime.hub_api_url, state.secret("admin-api-token")[0])


async def prewarm_local(state: StateDir, name: str, notebooks: Path) -> tuple[list[str], list[str]]:
    """Create the class's users in the hub and their homes; (users created, homes made)."""
    config = load_platform(state.platform_file)
    group = class_of(config, name)
    async with _admin(state) as admin:
        created = await admin.create_users(list(group.members))
    homes = [user for user in group.members if provide_notebooks(state.homes / user, notebooks)]
    return created, homes


def _archive(home: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    target = into / f"{home.name}.tar.gz"
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, "w:gz") as archive:
        archive.add(home, arcname=home.name)
    partial.replace(target)
    return target


async def close_local(
    state: StateDir, name: str, platform_files: list[Path], now: dt.datetime | None = None
) -> CloseResult:
    """Close the class: access, servers, homes, report - in that order, so nothing runs on.

    ``platform_files``: every platform.yaml that holds the class (the source and the live
    copy); the last one is the class as it stands.
    """
    now = now or dt.datetime.now(dt.UTC)
    config = load_platform(platform_files[-1])
    group = class_of(config, name)
    closed = group.model_dump(mode="json", exclude_none=True)
    closed["course"]["status"] = "closed"
    change = PlatformChange(groups={name: closed})
    for path in platform_files:  # validated everywhere first: all or nothing
        change_file(path, change, write=False)
    for path in platform_files:
        change_file(path, change)

    stopped = []
    if state.runtime_file.exists():  # the platform runs: stop what the class still runs
        async with _admin(state) as admin:
            for user in group.members:
                if await admin.stop_server(user):
                    stopped.append(user)

    homes: dict[str, str] = {}
    policy = group.course.homes
    for user in group.members:
        home = state.homes / user
        if not home.exists():
            homes[user] = "none"
        elif policy == "keep":
            homes[user] = "kept"
        else:
            if policy == "archive":
                homes[user] = f"archived {_archive(home, state.root / 'archives' / name)}"
            else:
                homes[user] = "deleted"
            shutil.rmtree(home)

    ledger_file = state.root / "accounting.sqlite"
    spend = {user: 0.0 for user in group.members}
    if ledger_file.exists():
        ledger = Ledger(f"sqlite:///{ledger_file}")
        try:
            spend = class_spend(config, ledger, name, now)
        finally:
            ledger.close()
    report = state.root / "reports" / f"{name}.csv"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(report_csv(spend, group.budget.usd))
    return CloseResult(stopped, homes, report, sum(spend.values()))


def run(coro):
    return asyncio.run(coro)
