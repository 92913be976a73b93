"""Before and after a class on the local platform: room for everyone, then a clean close.

Prewarm creates the roster's users in the hub and their homes (with the platform's
notebooks), so 9:00 is a login and a server start, not an account creation. Close shuts
the class: members lose access at once (platform.yaml, followed live); from those who have
no other way in (``classes.revoke``) their tokens are revoked and their servers and Dask
clusters stopped, and their homes are archived or deleted as the course says (members who
keep access keep their homes); a final cost report is written per student and in total.
Run again after an interruption, it finishes what is left. On Kubernetes, prewarm is the chart's placeholders
(`platform_tools.classes.placeholders`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from platform_tools.classes.course import class_of, class_spend, report_csv
from platform_tools.classes.revoke import Revoked, losing_access, revoke_access
from platform_tools.clients.gatewayadmin import GatewayAdmin
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
    homes: dict[str, str]  # user -> "archived <path>", "deleted", "kept", "kept (keeps access)", "none"
    report: Path
    total_usd: float
    revoked: dict[str, Revoked] = field(default_factory=dict)
    kept_access: list[str] = field(default_factory=list)
    platform_running: bool = True


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


def _close_home(home: Path, policy: str, archives: Path) -> str:
    """Archive and delete, or delete, one home - safely if interrupted and run again.

    The home is first moved aside in its own folder (one rename), so the user's directory is
    either whole or gone; the archive is written from it and only then marked done (another
    rename), and
    only a home marked done is deleted. A run that stopped half-way is finished by the next:
    a home moved aside is archived again from the whole copy, one marked done is deleted,
    and a complete archive is never overwritten by a half-deleted home.
    """
    user = home.name
    aside, done = home.parent / f".{user}.closing", home.parent / f".{user}.closed"
    target = archives / f"{user}.tar.gz"
    if home.exists() and not aside.exists() and not done.exists():
        home.replace(aside)
    if aside.exists():
        if policy == "archive":
            archives.mkdir(parents=True, exist_ok=True)
            partial = archives / f".{user}.tar.gz.partial"
            with tarfile.open(partial, "w:gz") as archive:
                archive.add(aside, arcname=user)
            partial.replace(target)
        aside.replace(done)
    if done.exists():
        shutil.rmtree(done)
        return f"archived {target}" if policy == "archive" else "deleted"
    return "none"


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

    # Who loses access: members with no other way in (a TA in another group, an admin, keeps it).
    losing, keeping = losing_access(load_platform(platform_files[-1]), list(group.members))
    revoked: dict[str, Revoked] = {}
    running = state.runtime_file.exists()
    if running:  # the platform runs: take back tokens, servers and clusters
        runtime = LocalRuntime.load(state.runtime_file)
        gateway = None
        if config.dask_gateway.enabled:
            gateway = GatewayAdmin(runtime.gateway_url, state.secret("accounting-api-token")[0])
        async with _admin(state) as admin:
            revoked = await revoke_access(admin, gateway, losing)
    stopped = [user for user, done in revoked.items() if done.servers]

    homes: dict[str, str] = {}
    policy = group.course.homes
    for user in group.members:
        home = state.homes / user
        if user in keeping:
            homes[user] = "kept (keeps access)" if home.exists() else "none"
        elif policy == "keep":
            homes[user] = "kept" if home.exists() else "none"
        else:
            homes[user] = _close_home(home, policy, state.root / "archives" / name)

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
    return CloseResult(stopped, homes, report, sum(spend.values()), revoked, keeping, running)


def run(coro):
    return asyncio.run(coro)
