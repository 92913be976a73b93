"""One container as a process: bubblewrap over a read-only view of this machine.

What a container runtime would give the process, and how it is had without one:

* its mounts (volumes, the image's files) at the paths the pod names: bubblewrap binds them in a
  private mount namespace. A mount point that does not exist here is made inside a tmpfs laid
  over its nearest existing parent, whose own entries are bound back read-only, so nothing on
  this machine is created or changed;
* a writable /tmp, /dev/shm, HOME and working directory of its own (tmpfs: the container layer), and
  /etc/hosts from the pod network (tests/rehearsal/network.py);
* a PID namespace of its own (bwrap's init reaps, as tini would), killed with the process;
* its user: bwrap keeps only CAP_SETUID/CAP_SETGID, which ``setpriv`` uses to become the pod's
  runAsUser/runAsGroup (fsGroup as a supplementary group) and then drops with every other
  capability;
* its network namespace (nsenter, before bwrap) and its pids cgroup (the process joins it
  before anything else runs), by which the kubelet finds and stops the whole process tree.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
TMPFS = "tmpfs"  # a mounts value: an empty tmpfs anyone may write to (sticky, as /tmp)
EMPTY = "empty"  # a mounts value: an empty tmpfs only root may write to, hiding what was there


def _bound_back(entry: Path) -> list[str]:
    """bwrap arguments showing ``entry`` of this machine read-only at its own path."""
    if entry.is_symlink():
        return ["--symlink", os.readlink(entry), str(entry)]
    return ["--ro-bind", str(entry), str(entry)]


def _resolved(target: str) -> str:
    """``target`` through the symlinks of its existing part (/var/run/x -> /run/x): bwrap
    cannot mount on a symlink."""
    path, rest = Path(target), []
    while not path.exists() and path != path.parent:
        rest.insert(0, path.name)
        path = path.parent
    return str(Path(os.path.realpath(path), *rest))


@dataclass
class Sandbox:
    argv: list[str]
    env: dict[str, str]
    mounts: dict[str, Path | str] = field(default_factory=dict)  # container path -> host path, TMPFS, EMPTY
    read_only: set[str] = field(default_factory=set)  # container paths bound read-only
    user: int = 0
    group: int = 0
    groups: list[int] = field(default_factory=list)
    workdir: str = "/"
    netns: str | None = None  # /run/netns/<name>
    etc_links: dict[str, str] = field(default_factory=dict)  # /etc entry -> what it links to
    cgroup: Path | None = None  # a pids cgroup folder

    def command(self) -> list[str]:
        self.mounts = {_resolved(t): s for t, s in self.mounts.items()}
        self.read_only = {_resolved(t) for t in self.read_only}
        args = [BWRAP, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        parents = self._tmpfs_parents()
        if Path("/") in parents:  # a mount point right under /: the root is a tmpfs (bwrap's own)
            for entry in sorted(Path("/").iterdir()):
                if entry.name not in ("dev", "proc", "tmp"):
                    args += _bound_back(entry)
        else:
            args += ["--ro-bind", "/", "/"]
        args += ["--dev", "/dev", "--proc", "/proc"]
        args += ["--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/dev/shm"]
        for parent in parents:
            if parent == Path("/"):
                continue
            args += ["--tmpfs", str(parent)]
            for entry in sorted(parent.iterdir()):
                if parent == Path("/etc") and entry.name in self.etc_links:
                    continue
                args += _bound_back(entry)
            if parent == Path("/etc"):
                for name, target in self.etc_links.items():
                    args += ["--symlink", target, f"/etc/{name}"]
        made: set[Path] = set()
        tmpfs = {Path(t) for t, s in self.mounts.items() if s in (TMPFS, EMPTY)}
        for target in sorted(self.mounts, key=lambda p: (p.count("/"), p)):
            # folders on the way to a mount point, world-readable as an image's would be
            # (bwrap makes them 0700 on its own)
            for folder in reversed(Path(target).parents):
                hidden = any(m in folder.parents for m in tmpfs)  # inside an empty tmpfs
                if (folder.exists() and not hidden) or folder in made or str(folder) in self.mounts:
                    continue
                args += ["--perms", "0755", "--dir", str(folder)]
                made.add(folder)
            source = self.mounts[target]
            if source in (TMPFS, EMPTY):
                args += ["--perms", "1777" if source == TMPFS else "0755", "--tmpfs", target]
            else:
                args += ["--ro-bind" if target in self.read_only else "--bind", str(source), target]
        if self.user:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        args += ["--clearenv"]
        for key, value in self.env.items():
            args += ["--setenv", key, value]
        args += ["--chdir", self.workdir, "--"]
        if self.user:
            extra = ",".join(str(g) for g in self.groups)
            args += ["setpriv", f"--reuid={self.user}", f"--regid={self.group}"]
            args += [f"--groups={extra}"] if extra else ["--clear-groups"]
            args += ["--inh-caps=-all", "--bounding-set=-all", "--"]
        args += self.argv
        if self.netns:
            args = ["nsenter", f"--net={self.netns}", "--", *args]
        if self.cgroup:
            join = f'echo $$ > "{self.cgroup}/cgroup.procs" && exec "$@"'
            args = ["/bin/sh", "-c", join, "sandbox", *args]
        return args

    def _tmpfs_parents(self) -> list[Path]:
        """Existing folders to lay a tmpfs over, so that missing mount points can be made."""
        folders = {"/tmp"} | {t for t, s in self.mounts.items() if s in (TMPFS, EMPTY) or s.is_dir()}
        parents: set[Path] = set()
        for target in self.mounts:
            if Path(target).exists() or any(target.startswith(f.rstrip("/") + "/") for f in folders):
                continue
            parent = Path(target).parent
            while not parent.exists():
                parent = parent.parent
            parents.add(parent)
        if self.etc_links:  # /etc/hosts and resolv.conf become links: /etc is laid anew
            parents.add(Path("/etc"))
        # a parent inside another one is already writable (not inside /, whose entries are bound back)
        laid = {q for q in parents if q != Path("/")}
        return sorted(p for p in parents if not any(q in p.parents for q in laid))


class PidsCgroup:
    """A pids cgroup (v1, writable here) holding every process a container starts."""

    ROOT = Path("/sys/fs/cgroup/pids")

    def __init__(self, name: str):
        self.path = self.ROOT / name

    def create(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []

    def signal(self, number: int, spare: tuple[str, ...] = ()) -> None:
        """Signals every process in the group but those whose command name is in ``spare``."""
        for pid in self.pids():
            try:
                if spare and Path(f"/proc/{pid}/comm").read_text().strip() in spare:
                    continue
            except OSError:
                continue
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                pass

    def remove(self) -> None:
        try:
            for child in sorted(self.path.iterdir(), reverse=True):
                if child.is_dir():
                    child.rmdir()
            self.path.rmdir()
        except (FileNotFoundError, OSError):
            pass
