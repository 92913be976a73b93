"""Before and after a class on the local platform: room for everyone, then a clean close.

Prewarm creates the roster's users in the hub and their homes (with the platform's
notebooks, and the course's materials pulled as each student), so 9:00 is a login and a
server start, not an account creation. Close shuts
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
import os
import shutil
import tarfile
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from platform_tools.classes.course import class_of, class_spend, report_csv
from platform_tools.classes.materials import DEFAULT_JOBS, Home, HomeLocks, Pulled, pull_homes
from platform_tools.classes.revoke import Revoked, losing_access, revoke_access
from platform_tools.clients.gatewayadmin import GatewayAdmin
from platform_tools.clients.hubadmin import HubAdmin
from platform_tools.config import PlatformConfig, load_platform
from platform_tools.config.edit import PlatformChange, change_file
from platform_tools.contract.accounts import user_account, user_home
from platform_tools.ledger.store import Ledger
from platform_tools.local.accounts import Account, Accounts, lock_file
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


def running_spawner(state: StateDir, config: PlatformConfig) -> str:
    """The spawner of the platform at ``state``: as its `parhelion up` decided (runtime.json)
    while it runs, else as it will decide."""
    if state.runtime_file.exists():
        return LocalRuntime.load(state.runtime_file).spawner_of(config)
    return config.local_spawner


def make_accounts(state: StateDir, config: PlatformConfig, members: list[str]) -> list[Account]:
    """The members' Unix accounts (system-users, as root), so that 9:00 does not wait on
    useradd; none otherwise (simple: no accounts; not root: made at each first start)."""
    if running_spawner(state, config) != "system-users" or os.geteuid() != 0:
        return []
    accounts = Accounts.of(config, lock_file(state.root))
    return [accounts.ensure(user) for user in members]


@dataclass
class Prewarmed:
    created: list[str]  # hub users made now
    homes: list[str]  # homes given the platform's notebooks now
    materials: list[Pulled] = field(default_factory=list)  # the course's repository, per student


async def prewarm_local(
    state: StateDir,
    name: str,
    notebooks: Path,
    materials_for: Collection[str] | None = None,
    jobs: int = DEFAULT_JOBS,
) -> Prewarmed:
    """Create the class's users in the hub, their accounts (system-users) and their homes, and
    pull the course's materials into each home as its student (``classes.materials``) -
    for ``materials_for`` only when given (the students a last round missed)."""
    config = load_platform(state.platform_file)
    group = class_of(config, name)
    async with _admin(state) as admin:
        created = await admin.create_users(list(group.members))
    spawner = running_spawner(state, config)
    accounts = {a.name: a for a in await asyncio.to_thread(make_accounts, state, config, group.members)}
    homes, targets = [], []
    for user in group.members:
        account = accounts.get(user_account(config, user))
        owner = (account.uid, account.gid) if account else (None, None)
        home = user_home(config, spawner, state.homes, user)
        if provide_notebooks(home, notebooks, *owner):
            homes.append(user)
        if account is not None:
            targets.append(Home(user, account.home, account.uid, account.gid, account.name))
        elif spawner != "system-users":
            targets.append(Home(user, home))
    pulled: list[Pulled] = []
    materials = group.course.materials
    if materials is not None:
        wanted = set(group.members if materials_for is None else materials_for)
        targets = [home for home in targets if home.user in wanted]
        pulled = await pull_homes(targets, materials, jobs, material_locks(state))
        reached = {home.user for home in targets}
        pulled += [  # system-users without root: no account to pull as
            Pulled(user, "failed", "no account to pull as yet (run prewarm as root)")
            for user in group.members
            if user in wanted and user not in reached
        ]
    return Prewarmed(created, homes, pulled)


def material_locks(state: StateDir) -> HomeLocks:
    """The per-home pull locks every process of the platform at ``state`` shares."""
    return HomeLocks(state.root / "tmp" / "materials")


def _close_home(home: Path, user: str, policy: str, archives: Path) -> str:
    """Archive and delete, or delete, one home - safely if interrupted and run again.

    The home is first moved aside in its own folder (one rename), so the user's directory is
    either whole or gone; the archive is written from it and only then marked done (another
    rename), and
    only a home marked done is deleted. A run that stopped half-way is finished by the next:
    a home moved aside is archived again from the whole copy, one marked done is deleted,
    and a complete archive is never overwritten by a half-deleted home.
    """
    aside, done = home.parent / f".{home.name}.closing", home.parent / f".{home.name}.closed"
    target = archives / f"{user}.tar.gz"
    if home.exists() and not aside.exists() and not done.exists():
        home.replace(aside)
    if aside.exists():
        if policy == "archive":
            private_folder(archives)  # the platform's alone: every student's files are in it
            partial = archives / f".{user}.tar.gz.partial"
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
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
    spawner = running_spawner(state, config)
    for user in group.members:
        home = user_home(config, spawner, state.homes, user)
        if user in keeping:
            homes[user] = "kept (keeps access)" if home.exists() else "none"
        elif policy == "keep":
            homes[user] = "kept" if home.exists() else "none"
        else:
            homes[user] = _close_home(home, user, policy, state.root / "archives" / name)

    ledger_file = state.root / "accounting.sqlite"
    spend = {user: 0.0 for user in group.members}
    if ledger_file.exists():
        ledger = Ledger(f"sqlite:///{ledger_file}")
        try:
            spend = class_spend(config, ledger, name, now)
        finally:
            ledger.close()
    report = state.root / "reports" / f"{name}.csv"
    private_folder(report.parent)  # everyone's spend
    with os.fdopen(os.open(report, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(report_csv(spend, group.budget.usd))
    return CloseResult(stopped, homes, report, sum(spend.values()), revoked, keeping, running)


def private_folder(path: Path) -> None:
    """``path`` and its parents made 0700: the state directory may be passable (0711, for
    system-users' Dask clusters), so what is in it must not be readable by name."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    if path.parent.name == "archives":
        os.chmod(path.parent, 0o700)


def run(coro):
    return asyncio.run(coro)
