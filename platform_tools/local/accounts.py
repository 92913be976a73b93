"""The Unix accounts of hub users in ``system-users`` mode: made once, never borrowed.

Each hub user runs as the account ``contract.accounts.user_account`` names (``jupyter-<name>``),
made on their first start (the hub's pre-spawn hook, the gateway's first cluster) or by
`parhelion class create` ahead of a class. The account is made with the system's own tool
(``useradd``, arguments as a list: no shell) with its own group, its home under
``local.accounts.home_root`` (0700, its own), ``/bin/bash`` and no password (locked: people
log in through the hub, never to the machine).

An account Parhelion did not make is never used: its comment (GECOS, where no colon may go)
must be ``parhelion <platform name>`` and its uid a regular user's. Otherwise a hub name chosen
by an attacker (at an identity provider, on a sign-up form) that maps onto ``jupyter-admin`` made by
someone else, or onto any system account, would start a server as that account.

Forty students pressing Start at 9:00 make forty accounts at once: the hub makes them in threads,
`class create` in another process. One lock file (flock) serialises them; ``useradd`` also
retries when another tool holds ``/etc/passwd``'s own lock.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from platform_tools.config import PlatformConfig
from platform_tools.contract.accounts import account_name

#: A person's account's uid is in UID_MIN..UID_MAX (Debian's and Red Hat's login.defs); outside
#: are system accounts (root, daemon, ...) and nobody (65534).
UID_MIN = 1000
UID_MAX = 60000


def regular_uid(uid: int) -> bool:
    return UID_MIN <= uid <= UID_MAX


SHELL = "/bin/bash"
#: useradd's exit codes for "could not update the password / group file" (another holds its lock).
USERADD_BUSY = (1, 10)
USERADD_NAME_IN_USE = 9
USERADD_ATTEMPTS = 8


class AccountError(RuntimeError):
    """An account that cannot be made or must not be used; the message is for a person."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: Path


def marker(platform_name: str) -> str:
    """The comment every account Parhelion makes carries: how it knows its own."""
    return f"parhelion {platform_name}"


class Accounts:
    """Making and finding hub users' accounts; blocking (useradd, flock): call it off an event
    loop (``asyncio.to_thread``)."""

    def __init__(
        self,
        platform_name: str,
        prefix: str,
        home_root: Path,
        lock_file: Path,
        run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
    ):
        self.marker = marker(platform_name)
        self.prefix = prefix
        self.home_root = Path(home_root)
        self.lock_file = Path(lock_file)
        self._run = run

    @classmethod
    def of(cls, platform: PlatformConfig, lock_file: Path) -> Accounts:
        accounts = platform.local.accounts
        return cls(platform.name, accounts.prefix, accounts.home_root, lock_file)

    def name(self, username: str) -> str:
        """The same name as ``contract.accounts.user_account`` gives."""
        return account_name(self.prefix, username)

    def find(self, username: str) -> Account | None:
        """The user's account if it exists and is one Parhelion made for this platform; None if
        it does not exist; AccountError if it exists and is not ours."""
        name = self.name(username)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        home = self.home_root / name
        problems = []
        if not regular_uid(entry.pw_uid) or entry.pw_gid == 0:
            problems.append(f"uid {entry.pw_uid} is a system account's")
        if entry.pw_gecos.split(",")[0] != self.marker:
            problems.append(f"its comment is {entry.pw_gecos!r}, not {self.marker!r}")
        if Path(entry.pw_dir) != home:
            problems.append(f"its home is {entry.pw_dir}, not {home}")
        if problems:
            raise AccountError(
                f"hub user {username!r} would run as the account {name}, which exists and was not "
                f"made by Parhelion for this platform ({'; '.join(problems)}): it is not used. "
                "Remove that account or choose another local.accounts.prefix"
            )
        return Account(name, entry.pw_uid, entry.pw_gid, home)

    def ensure(self, username: str) -> Account:
        """The user's account, made now if it does not exist; its home there, 0700 and its own."""
        if os.geteuid() != 0:
            raise AccountError(
                "system-users needs root to make accounts: run `sudo parhelion up` (and `sudo "
                "parhelion class create`), or for one person or a group that trusts each other "
                "set local.spawner: simple and local.trusted: true"
            )
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            account = self.find(username) or self._make(username)
            _own_home(account)
            return account
        finally:
            os.close(fd)  # releases the lock

    def _make(self, username: str) -> Account:
        name = self.name(username)
        if not self.home_root.exists():  # made 0755 whatever the umask (the platform's is 077):
            self.home_root.mkdir(parents=True)  # each account passes through it to its home
            os.chmod(self.home_root, 0o755)
        command = [
            "useradd",
            "--create-home",
            "--home-dir",
            str(self.home_root / name),
            "--shell",
            SHELL,
            "--user-group",
            "--comment",
            self.marker,
            "--key",
            f"UID_MIN={UID_MIN}",
            "--key",
            f"UID_MAX={UID_MAX}",
            name,
        ]
        for attempt in range(USERADD_ATTEMPTS):
            done = self._run(command, capture_output=True, text=True, check=False)
            if done.returncode == 0 or done.returncode == USERADD_NAME_IN_USE:
                break  # in use: made a moment ago by a tool outside this lock; find() judges it
            if done.returncode not in USERADD_BUSY or attempt == USERADD_ATTEMPTS - 1:
                raise AccountError(
                    f"could not make the account {name} for hub user {username!r}: useradd exited "
                    f"{done.returncode}: {(done.stderr or '').strip()}"
                )
            time.sleep(0.05 * 2**attempt)  # /etc/passwd.lock held by another tool
        account = self.find(username)
        if account is None:
            raise AccountError(f"useradd made no account {name} for hub user {username!r}")
        return account


def _own_home(account: Account) -> None:
    """The home exists, is a directory (not a link) owned by the account, and is 0700. A home
    left by an earlier account of that name (removed, made again: a new uid) becomes this one's."""
    home = account.home
    if home.is_symlink():
        raise AccountError(f"{home} is a symbolic link: the home of {account.name} must be a folder")
    if not home.exists():
        home.mkdir(mode=0o700)
    if home.stat().st_uid != account.uid:
        for folder, folders, files in os.walk(home):
            os.lchown(folder, account.uid, account.gid)
            for entry in folders + files:
                os.lchown(os.path.join(folder, entry), account.uid, account.gid)
    else:
        os.lchown(home, account.uid, account.gid)
    os.chmod(home, 0o700)


def lock_file(state_root: Path) -> Path:
    """The lock every process making accounts for the platform at ``state_root`` takes."""
    return Path(state_root) / "tmp" / "accounts.lock"


def closed_to_others(paths: list[Path]) -> str | None:
    """The first of ``paths`` (or a folder on the way to it) other accounts cannot reach, said
    for a person; None when all can. Users' servers run the platform's Python as their own
    accounts: one installed under root's 0700 home (pyenv's or uv's default as root) cannot
    start for anyone."""
    for path in paths:
        real = Path(os.path.realpath(path))
        for folder in [*reversed(real.parents), real]:
            mode = folder.stat().st_mode
            needed = 0o001  # a folder: pass through
            if folder == real and folder.is_file():
                needed = 0o005 if mode & 0o100 else 0o004  # a program: run it; else read it
            if mode & needed != needed:
                return (
                    f"{path} is not reachable by other accounts ({folder} is "
                    f"{oct(mode & 0o777)}): users' servers run it as their own accounts"
                )
    return None


def startup_problem(platform: PlatformConfig, spawner: str, state_root: Path | None = None) -> str | None:
    """Why `parhelion up` must not serve ``platform`` with ``spawner``, said for a person; None
    when it may. Several people as one OS account (or on one shared password) unless
    ``local.trusted``; accounts that cannot be made (not root), cannot run the platform, or
    cannot reach their Dask clusters' folders in the state directory ``state_root``."""
    from platform_tools.config.policy import isolation_problem

    problem = isolation_problem(platform, spawner)
    if problem or spawner != "system-users":
        return problem
    if os.geteuid() != 0:
        return (
            "local.spawner: system-users runs each person as their own Unix account, and making "
            "and switching to accounts needs root: run `sudo parhelion up`, or for one person or a "
            "group that trusts each other set local.spawner: simple and local.trusted: true"
        )
    import jupyterhub

    import platform_tools

    needed = [
        Path(sys.executable),
        Path(os.__file__),
        Path(jupyterhub.__file__),
        Path(platform_tools.__file__),
    ]
    if state_root is not None and platform.dask_gateway.enabled:
        # users' schedulers run in gateway/clusters/<name>: every folder above must let them pass
        needed.append(
            next(p for p in [Path(state_root).absolute(), *Path(state_root).absolute().parents] if p.exists())
        )
    closed = closed_to_others(needed)
    if closed:
        return (
            f"local.spawner: system-users: {closed}. Install Python and the platform where every "
            "account can read them (e.g. a Python under /usr or /opt, the repository and "
            "local.state_dir outside /root), or set local.spawner: simple and local.trusted: true"
        )
    return None
