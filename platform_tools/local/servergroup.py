"""Every process of one local notebook server, so that stopping the server stops all of them.

A cap that stops a server by signalling its pid leaves behind what the user started from it:
``nohup`` jobs (orphaned to init, still in the kernel's session), ``setsid`` double-forked
daemons (in no session or tree of the server at all). They keep running, unmetered, after the
enforcer stopped the server. So each server's processes are held together:

* In a cgroup, where the machine lets the platform make one (a writable cgroup v1 ``pids`` or
  ``freezer`` hierarchy, or cgroup v2): the server joins it before it runs, every descendant is
  born in it and cannot leave (only root can move processes), so a double fork does not escape.
  Stopping kills everything in it, then removes it.
* Without a usable cgroup: the process tree of the server, every process in a session of that
  tree (``nohup`` jobs), every process whose environment carries the server's marker
  (``PARHELION_SERVER``: daemons that keep their environment) and, in ``system-users`` mode,
  every process of the user's uid that no other server of theirs claims. A daemon that both
  clears its environment and double-forks under a shared uid escapes only this fallback.

A group made with ``Limits`` (a server's profile, a Dask worker's size) is also made in the
hierarchies that limit memory and CPU (``local.cgroups``: the same folder in v2, the v1
``memory``, ``cpu`` and ``cpuacct`` hierarchies otherwise); the process joins all of them.
The same class holds a Dask cluster's processes (``dask_group_base``): one group per scheduler
and per worker, under one folder per cluster.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from platform_tools.local.cgroups import Limits, apply_limits, limit_roots

log = logging.getLogger(__name__)

#: Where cgroups are looked for, preferred first (v1 pids and freezer, then v2).
CGROUP_ROOTS = (
    Path("/sys/fs/cgroup/pids"),
    Path("/sys/fs/cgroup/freezer"),
    Path("/sys/fs/cgroup/unified"),
    Path("/sys/fs/cgroup"),
)
#: The environment variable that names the server a process was started for.
MARKER = "PARHELION_SERVER"


def group_base(state_dir: str | Path) -> str:
    """The cgroup folder of one platform's servers (two platforms on a machine do not mix)."""
    return "parhelion-servers-" + hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]


def dask_group_base(state_dir: str | Path) -> str:
    """The cgroup folder of one platform's Dask clusters (``<base>/<cluster>/<process>``)."""
    return "parhelion-dask-" + hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]


def server_id(base: str, username: str, server_name: str) -> str:
    """One server's name in the cgroup folder and in the marker; safe as a folder name."""
    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{username}-{server_name}")[:80]
    digest = hashlib.sha256(f"{username}\0{server_name}".encode()).hexdigest()[:8]
    return f"{base}/{readable}-{digest}"


def usable_cgroup_root(roots: Iterable[Path] = CGROUP_ROOTS) -> Path | None:
    """The first cgroup hierarchy this process may make groups in and move processes into."""
    for root in roots:
        if not (root / "cgroup.procs").exists():
            continue
        probe = root / f"parhelion-probe-{os.getpid()}-{secrets.token_hex(6)}"  # threads probe at once
        try:
            probe.mkdir(exist_ok=True)
            (probe / "cgroup.procs").write_text("")  # an empty write checks the file is ours
            probe.rmdir()
            return root
        except OSError:
            try:
                probe.rmdir()
            except OSError:
                pass
    return None


@dataclass
class ServerGroup:
    """The processes of one server: its cgroup (or None), marker, and user id (system-users)."""

    identity: str  # server_id(...): the cgroup path under the root and the marker's value
    cgroup: Path | None
    uid: int | None = None  # kill the user's processes too, when there is no cgroup
    limited: tuple[Path, ...] = ()  # the same group in the hierarchies that limit it (v1)
    enforced: tuple[str, ...] = ()  # the limit files written

    @classmethod
    def make(
        cls,
        identity: str,
        uid: int | None = None,
        root: Path | None = None,
        limits: Limits | None = None,
        limit_hierarchies: list[Path] | None = None,
    ) -> ServerGroup:
        """The group, made (again) in the membership hierarchy and, with ``limits``, in those
        that enforce them, with the limits written. A restarted hub re-makes an existing one."""
        root = root if root is not None else usable_cgroup_root()
        cgroup = _mkdir(root / identity) if root is not None else None
        limited: list[Path] = []
        enforced: list[str] = []
        if limit_hierarchies is None:
            limit_hierarchies = limit_roots(probe=limits is not None)
        hierarchies = limit_hierarchies
        for hierarchy in hierarchies:
            if limits is None:  # found to be stopped: the folders it has, none made
                group = hierarchy / identity if (hierarchy / identity).is_dir() else None
            else:
                group = _mkdir(hierarchy / identity)
            if group is None:
                continue
            if cgroup is None or group.resolve() != cgroup.resolve():
                limited.append(group)
            if limits is not None:
                enforced += [f"{group}/{name}" for name in apply_limits(hierarchy, group, limits)]
        return cls(identity, cgroup, uid, tuple(limited), tuple(enforced))

    def join(self) -> None:
        """Move the calling process into the group (a Popen ``preexec_fn``, before setuid): the
        membership hierarchy and every limiting one."""
        for group in self._dirs():
            (group / "cgroup.procs").write_text(str(os.getpid()))

    def _dirs(self) -> list[Path]:
        return ([self.cgroup] if self.cgroup is not None else []) + list(self.limited)

    def environment(self) -> dict[str, str]:
        return {MARKER: self.identity}

    # ------------------------------------------------------------------ finding

    def cgroup_pids(self) -> set[int]:
        if self.cgroup is None:
            return set()
        try:
            return {int(pid) for pid in (self.cgroup / "cgroup.procs").read_text().split()}
        except OSError:
            return set()

    def related(self, pid: int | None) -> set[int]:
        """The fallback's set: tree, sessions of the tree, marked processes, the user's uid."""
        found: set[int] = set()
        sessions: set[int] = set()
        if pid:
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                tree = []
            for proc in tree:
                found.add(proc.pid)
                try:
                    sessions.add(os.getsid(proc.pid))
                except OSError:
                    pass
        me = os.getpid()
        for proc in psutil.process_iter():
            if proc.pid in (me, 1):
                continue
            try:
                marker = _marker(proc.pid)
                if (
                    marker == self.identity
                    or os.getsid(proc.pid) in sessions
                    or (
                        self.uid is not None
                        and proc.uids().real == self.uid
                        and marker in (None, self.identity)
                    )
                ):
                    found.add(proc.pid)
            except (OSError, psutil.Error):
                continue
        found.discard(me)
        return found

    def members(self, pid: int | None = None) -> set[int]:
        return self.cgroup_pids() if self.cgroup is not None else self.related(pid)

    # ------------------------------------------------------------------ stopping

    def stop(self, known: set[int] = frozenset(), term_seconds: float = 3.0) -> list[int]:
        """SIGTERM every member (and ``known``), SIGKILL what is left after ``term_seconds``,
        until none is left; then remove the cgroup. The pids that were signalled."""
        signalled: set[int] = set()
        targets = self.members() | set(known)
        _signal(targets, signal.SIGTERM)
        signalled |= targets
        deadline = time.monotonic() + term_seconds
        while time.monotonic() < deadline and _alive(self.members() | targets):
            time.sleep(0.1)
        for _ in range(50):  # members may still fork while they are being killed
            left = _alive(self.members() | targets)
            if not left:
                break
            _signal(left, signal.SIGKILL)
            signalled |= left
            time.sleep(0.1)
        self.remove()
        return sorted(signalled)

    def remove(self) -> None:
        """The group's folder in every hierarchy, then its parents (the cluster's, the
        platform's) once they are empty.

        The kernel may still hold a group whose last process has just died (rmdir answers
        EBUSY for a few milliseconds): such a group is removed by a background retry, so the
        stop itself never waits for it (a stop held there once let a quota check see a
        cluster's old processes beside its new ones)."""
        busy = [group for group in self._dirs() if not self._remove_one(group)]
        if busy:
            threading.Thread(target=self._remove_later, args=(busy,), daemon=True).start()

    def _remove_later(self, groups: list[Path], seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while groups and time.monotonic() < deadline:
            time.sleep(0.2)
            groups = [group for group in groups if not self._remove_one(group, quiet=True)]
        for group in groups:
            log.warning("%s not removed: it still holds processes after %g s", group, seconds)

    def _remove_one(self, group: Path, quiet: bool = False) -> bool:
        """Remove one folder and its empty parents; False if the kernel refused (busy)."""
        try:
            group.rmdir()
        except FileNotFoundError:
            return True
        except OSError as error:
            if not quiet:
                log.info("%s not removed yet (%s): retrying in the background", group, error)
            return False
        parent = group
        for _ in range(self.identity.count("/")):
            parent = parent.parent
            try:
                parent.rmdir()
            except OSError:
                break
        return True


def _mkdir(group: Path) -> Path | None:
    try:
        group.mkdir(parents=True, exist_ok=True)
        return group
    except OSError as error:
        log.warning("%s: no cgroup (%s); stopping by tree and marker, no limit there", group, error)
        return None


def _marker(pid: int) -> str | None:
    with open(f"/proc/{pid}/environ", "rb") as handle:
        for item in handle.read().split(b"\0"):
            if item.startswith(MARKER.encode() + b"="):
                return item.split(b"=", 1)[1].decode(errors="replace")
    return None


def _alive(pids: Iterable[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.Error:
            continue
    return alive


def _signal(pids: Iterable[int], number: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, number)
        except (ProcessLookupError, PermissionError):
            pass
