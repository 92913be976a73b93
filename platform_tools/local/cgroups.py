"""CPU and memory limits for a group of local processes, and what this machine can enforce.

On Kubernetes a profile's ``cpu_limit`` and ``mem_limit_gib`` and a Dask worker's
``worker_cores`` and ``worker_memory`` are the container's limits. On one machine nothing
applies them unless the platform does, and one student's runaway array then takes the memory
of the whole class. So each server and each Dask process gets its limits in cgroups:

* cgroup v2 (a normal machine with systemd; also the ``unified`` mount where it holds the
  controllers): ``memory.max`` (and ``memory.swap.max`` 0, so the limit is not stretched by
  swap, as in a container), ``cpu.max`` as "quota period"; the controllers are enabled down
  the tree through each parent's ``cgroup.subtree_control``.
* cgroup v1: the ``memory`` hierarchy (``memory.limit_in_bytes``, and
  ``memory.memsw.limit_in_bytes`` where swap is accounted), the ``cpu`` hierarchy
  (``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``), and ``cpuacct`` so the usage can be read.

A process joins every hierarchy of its group before it runs (``ServerGroup.join``, a Popen
``preexec_fn``, before the switch to the user's account), so all it starts is limited with it.
Over the memory limit the kernel's OOM killer kills the largest process of the group only
(a notebook's kernel, a worker's process), never another user's.

``enforcement()`` says what is active, for runtime.json, `parhelion status` and the warning:
``systemd`` (servers as systemd units, see hub/systemd.py), ``cgroup-v2``, ``cgroup-v1`` or
``none`` (not root, no writable cgroup): then limits are not enforced and `parhelion up` and the
hub say so, instead of letting a profile's numbers look like promises.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_FS = Path("/sys/fs/cgroup")
PERIOD_US = 100_000  # the CFS period: cpus x this many microseconds of CPU per period
NEEDED = ("memory", "cpu")


@dataclass(frozen=True)
class Limits:
    """What one group may use; None: no limit of that kind."""

    memory_bytes: int | None = None
    cpus: float | None = None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def v2_root(fs: Path = CGROUP_FS) -> Path | None:
    """The cgroup v2 tree that holds the memory and cpu controllers, if any (pure v2 at ``fs``,
    or the hybrid ``unified`` mount, which usually holds none)."""
    for candidate in (fs, fs / "unified"):
        if set(NEEDED) <= set(_read(candidate / "cgroup.controllers").split()):
            return candidate
    return None


def v1_roots(fs: Path = CGROUP_FS) -> dict[str, Path]:
    """The v1 hierarchies that limit or account memory and CPU (``cpu`` and ``cpuacct`` are
    often one ``cpu,cpuacct`` mount with two names)."""
    found = {}
    for controller, probe in (
        ("memory", "memory.limit_in_bytes"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpuacct", "cpuacct.usage"),
    ):
        if (fs / controller / probe).exists():
            found[controller] = fs / controller
    return found


def writable(root: Path) -> bool:
    """Whether this process may make a group under ``root`` (and so move processes into it).
    The probe's name is unique: threads of one process (the gateway's) probe at once."""
    probe = root / f"parhelion-probe-{os.getpid()}-{secrets.token_hex(6)}"
    try:
        probe.mkdir(exist_ok=True)
        probe.rmdir()
        return True
    except OSError:
        return False


def limit_roots(fs: Path = CGROUP_FS, probe: bool = True) -> list[Path]:
    """The hierarchies a limited group is made in: the v2 tree, else the v1 ones; [] if none
    is writable. Distinct mounts only (``cpu`` and ``cpuacct`` may be the same). Without
    ``probe``: every one that exists (to find a group's folders, not to make them)."""
    v2 = v2_root(fs)
    if v2 is not None and (not probe or writable(v2)):
        return [v2]
    roots: list[Path] = []
    for root in v1_roots(fs).values():
        if (not probe or writable(root)) and all(root.resolve() != seen.resolve() for seen in roots):
            roots.append(root)
    return roots


def cgroup_kind(fs: Path = CGROUP_FS) -> str:
    """``cgroup-v2``, ``cgroup-v1`` (both memory and cpu writable) or ``none``."""
    v2 = v2_root(fs)
    if v2 is not None and writable(v2):
        return "cgroup-v2"
    v1 = v1_roots(fs)
    if all(name in v1 and writable(v1[name]) for name in NEEDED):
        return "cgroup-v1"
    return "none"


def systemd_runs(
    proc: Path = Path("/proc"),
    booted_marker: Path = Path("/run/systemd/system"),
    systemd_run: str | None = None,
    euid: int | None = None,
) -> bool:
    """PID 1 is systemd (sd_booted: its runtime folder exists), ``systemd-run`` is installed and
    we are root: then transient units can be started for the servers."""
    systemd_run = systemd_run if systemd_run is not None else shutil.which("systemd-run")
    euid = os.geteuid() if euid is None else euid
    return (
        _read(proc / "1" / "comm").strip() == "systemd"
        and booted_marker.is_dir()
        and bool(systemd_run)
        and euid == 0
    )


def enforcement(system_users: bool, fs: Path = CGROUP_FS, systemd: bool | None = None) -> dict[str, str]:
    """What limits the servers and the Dask workers: ``systemd`` (servers only, and only when
    each user has their own account: SystemdSpawner runs units as the user), ``cgroup-v2``,
    ``cgroup-v1`` or ``none``."""
    cgroups = cgroup_kind(fs)
    systemd = systemd_runs() if systemd is None else systemd
    return {"servers": "systemd" if systemd and system_users else cgroups, "dask_workers": cgroups}


def unenforced_warning(active: dict[str, str]) -> str | None:
    """The sentence for `parhelion up` and the hub log when a limit is not applied; else None."""
    missing = [what.replace("_", " ") for what, how in active.items() if how == "none"]
    if not missing:
        return None
    return (
        f"CPU and memory limits are not enforced for {' and '.join(missing)}: no writable cgroup "
        "and no systemd (run `parhelion up` as root on a machine with cgroups); profiles' cpu_limit "
        "and mem_limit_gib and Dask worker_cores and worker_memory are only counted, and one user "
        "can take the whole machine's memory."
    )


def apply_limits(root: Path, group: Path, limits: Limits) -> list[str]:
    """Write ``limits`` into ``group`` (a folder under the hierarchy ``root``); the files
    written. A file this hierarchy does not have is skipped (another hierarchy of the group
    holds it, in v1)."""
    written: list[str] = []
    if (root / "cgroup.controllers").exists():  # v2: enable the controllers down to the group
        ancestor = root
        for part in group.relative_to(root).parts:
            try:
                (ancestor / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in NEEDED))
            except OSError as error:
                log.warning("%s: controllers not enabled: %s", ancestor, error)
            ancestor = ancestor / part
    settings: list[tuple[str, str]] = []
    if limits.memory_bytes is not None:
        memory = str(int(limits.memory_bytes))
        # v1: memsw (memory+swap) may never be below the limit: open it first, then close it
        settings += [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", memory)]
        settings += [("memory.memsw.limit_in_bytes", memory)]
        settings += [("memory.max", memory), ("memory.swap.max", "0")]
    if limits.cpus is not None:
        quota = max(1000, int(limits.cpus * PERIOD_US))
        settings += [("cpu.cfs_period_us", str(PERIOD_US)), ("cpu.cfs_quota_us", str(quota))]
        settings += [("cpu.max", f"{quota} {PERIOD_US}")]
    for name, value in settings:
        path = group / name
        if not path.exists():
            continue
        try:
            path.write_text(value)
            if name not in written:
                written.append(name)
        except OSError as error:
            log.warning("%s: %s not set to %s: %s", group, name, value, error)
    return written


def remove_tree(group: Path) -> bool:
    """Remove an empty group and every empty group below it (deepest first); whether it is gone.
    A group that still has processes stays (rmdir refuses), with its parents."""
    if not group.is_dir():
        return True
    for child in group.iterdir():
        if child.is_dir():
            remove_tree(child)
    try:
        group.rmdir()
        return True
    except OSError as error:
        log.warning("%s not removed: %s", group, error)
        return False


def hierarchy_roots(fs: Path = CGROUP_FS) -> Iterable[Path]:
    """Every mounted hierarchy a platform's groups may be in (v1 controllers, v2, unified)."""
    if (fs / "cgroup.procs").exists():
        yield fs
    if fs.is_dir():
        for child in sorted(fs.iterdir()):
            if (child / "cgroup.procs").exists() and not child.is_symlink():
                yield child


def remove_platform_groups(bases: Iterable[str], fs: Path = CGROUP_FS) -> list[Path]:
    """At the platform's stop, after its last process: its base folders (servers, Dask) in
    every hierarchy, with any empty group a crash left in them. The ones that could not go."""
    left = []
    for root in hierarchy_roots(fs):
        for base in bases:
            if not remove_tree(root / base):
                left.append(root / base)
    return left
