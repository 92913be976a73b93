"""A class's materials in every student's home: nbgitpuller's pull, run as each student.

nbgitpuller (``nbgitpuller.pull.GitPuller``) is what summer schools already use: a first pull
clones the repository into the folder; later pulls fetch, keep what the student changed
(their edits win a conflict: ``merge -Xours``), restore files they deleted, and rename a file
of theirs that a new upstream file would overwrite. Parhelion runs that very code - its
``gitpuller`` command, ``python -m nbgitpuller.pull`` - rather than a copy of its rules.

On one machine with ``system-users`` each home is its student's, 0700, and the student can
swap ``~/<folder>`` for a link to another home or to ``/etc`` at any moment. So the pull never
runs as root: it is a process of the student's own account (uid, gid, no other groups,
umask 077, a fresh environment without the platform's tokens, ``/`` as working directory),
and it can only write where the student can. Whatever is in the student's clone (hooks,
``.git/config``) runs as the student too. git is held to the materials' one protocol
(``GIT_ALLOW_PROTOCOL``), never prompts for a password, and never looks for a repository
above the home (``GIT_CEILING_DIRECTORIES``).

Many homes are pulled at once, at most ``jobs`` at a time, each stopped (its whole process
group) after the materials' ``timeout_seconds``; one failing home is reported and the others
go on. A lock per home in the platform's own state directory keeps a prewarm and a server
start from pulling the same home at once (the second says so and leaves it to the first).
Pulling again is harmless: nothing new upstream changes nothing.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus, urlsplit, urlunsplit

from platform_tools.config.materials import CourseMaterials

log = logging.getLogger(__name__)

#: Pulls at once by default: git is mostly waiting on the network, a little on the disk.
DEFAULT_JOBS = 8
#: What the end of a failed pull's output is cut to, for a report line.
DETAIL_CHARS = 400


@dataclass(frozen=True)
class Home:
    """A student's home and whose it is: ``uid`` None runs the pull as this process's own
    account (``simple``: the platform's account is everyone's)."""

    user: str
    path: Path
    uid: int | None = None
    gid: int | None = None
    account: str | None = None


@dataclass(frozen=True)
class Pulled:
    user: str
    outcome: str  # cloned, updated, failed, timed out, busy
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in ("cloned", "updated")

    def line(self) -> str:
        return f"{self.user}: {self.outcome}" + (f" ({self.detail})" if self.detail else "")


def nbgitpuller_link(hub_url: str, materials: CourseMaterials) -> str:
    """The link nbgitpuller's link generator makes for JupyterLab: the hub's
    ``hub/user-redirect/git-pull`` with ``repo``, ``urlpath`` (``lab/tree/<folder>/``) and
    ``branch``, in that order, form-encoded as a browser's URLSearchParams does. ``targetpath``
    is added only where nbgitpuller's own default (the last part of the URL, ``.git`` kept)
    would clone elsewhere than the folder prewarm uses, so link and prewarm share one clone."""
    base = urlsplit(hub_url)
    path = base.path if base.path.endswith("/") else base.path + "/"
    query = [
        ("repo", materials.repo),
        ("urlpath", f"lab/tree/{materials.target}/"),
        ("branch", materials.branch),
    ]
    if materials.repo.rstrip("/").split("/")[-1] != materials.target:
        query.append(("targetpath", materials.target))
    encoded = "&".join(f"{key}={_form_encode(value)}" for key, value in query)
    return urlunsplit((base.scheme, base.netloc, f"{path}hub/user-redirect/git-pull", encoded, ""))


def _form_encode(value: str) -> str:
    """application/x-www-form-urlencoded as the WHATWG URL standard serialises it (what the
    generator's ``url.searchParams.set`` gives): only letters, digits and ``*-._`` stay, a
    space is ``+``. Python's quote_plus also keeps ``~``, which browsers encode."""
    return quote_plus(value, safe="*").replace("~", "%7E")


#: Run as the student: nbgitpuller's own command (``gitpuller``). A repository on this
#: machine belongs to its instructor, and git (2.36 and later) refuses to read another
#: account's repository ("dubious ownership") unless its ``safe.directory`` is set in a
#: protected configuration, which is not the command line in git 2.39: so for that one folder
#: (argv[1], empty for https) a global configuration of the pull's own, in a private temporary
#: file of the student's, says so. Nothing of the student's own ~/.gitconfig is read.
PULL_AS_STUDENT = """
import os, sys, tempfile
trusted, arguments = sys.argv[1], sys.argv[2:]
fd, path = tempfile.mkstemp(prefix="parhelion-materials-", suffix=".gitconfig")
with os.fdopen(fd, "w") as handle:
    handle.write(f"[safe]\\n\\tdirectory = {trusted}\\n" if trusted else "")
os.environ["GIT_CONFIG_GLOBAL"] = path
try:
    from nbgitpuller.pull import main
    sys.argv = ["gitpuller", *arguments]
    main()
finally:
    os.unlink(path)
"""


def pull_command(materials: CourseMaterials, target: Path, python: str = sys.executable) -> list[str]:
    """nbgitpuller's own command line (its ``gitpuller``), options ended before the values."""
    trusted = materials.local_path or ""
    return [python, "-c", PULL_AS_STUDENT, trusted, "--", materials.repo, materials.branch, str(target)]


def git_environment(home: Home, materials: CourseMaterials) -> dict[str, str]:
    """The pull's whole environment: nothing of the calling service's (its tokens) reaches it."""
    account = home.account or os.environ.get("USER", "")
    return {
        "HOME": str(home.path),
        "USER": account,
        "LOGNAME": account,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "file" if materials.local else "https",
        "GIT_CEILING_DIRECTORIES": str(home.path),
        # hooks in the student's own clone would run in every pull (prewarm's and each start's)
        # and could hold a pull slot for the whole timeout: none run
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.hooksPath",
        "GIT_CONFIG_VALUE_0": "/dev/null",
    }


class HomeLocks:
    """One lock file per home in a folder of the platform's (root's, 0700): a prewarm and a
    server start never pull the same home at once. The file is opened by this process, never
    in the home, and not inherited by the pull."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def take(self, home: Home) -> int | None:
        """A held lock's descriptor, or None if another pull of this home holds it."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = hashlib.sha256(str(home.path).encode()).hexdigest()[:32]
        fd = os.open(self.folder / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd


async def pull_home(
    home: Home, materials: CourseMaterials, locks: HomeLocks | None = None, python: str = sys.executable
) -> Pulled:
    """Pull ``materials`` into ``home`` as its student; never raises for one home's failure."""
    started = time.monotonic()
    if home.uid == 0:
        return Pulled(home.user, "failed", "refused: a pull never runs as root in a student's home")
    lock = locks.take(home) if locks is not None else None
    if locks is not None and lock is None:
        return Pulled(home.user, "busy", "another pull of this home runs now")
    try:
        return await _run(home, materials, python, started)
    except OSError as exc:  # the account or python could not be switched to or run
        return Pulled(home.user, "failed", f"{type(exc).__name__}: {exc}", time.monotonic() - started)
    finally:
        if lock is not None:
            os.close(lock)


async def _run(home: Home, materials: CourseMaterials, python: str, started: float) -> Pulled:
    switch = {}
    if home.uid is not None:
        switch = {"user": home.uid, "group": home.gid, "extra_groups": []}
    process = await asyncio.create_subprocess_exec(
        *pull_command(materials, home.path / materials.target, python),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd="/",  # not the home: a path the student controls is resolved by them, not by root
        env=git_environment(home, materials),
        umask=0o077,
        start_new_session=True,  # its own process group: a timeout stops git's children too
        **switch,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), materials.timeout_seconds)
    except asyncio.CancelledError:
        # a prewarm stopped (Ctrl-C) or the hub shutting down: the pull is in a session of
        # its own, so nothing else would stop it, and the home's lock is released meanwhile
        _stop(process.pid)
        await process.wait()
        raise
    except TimeoutError:
        _stop(process.pid)
        await process.wait()
        return Pulled(
            home.user,
            "timed out",
            f"stopped after {materials.timeout_seconds} s (course.materials.timeout_seconds)",
            time.monotonic() - started,
        )
    text = output.decode("utf-8", "replace")
    seconds = time.monotonic() - started
    if process.returncode != 0:
        return Pulled(home.user, "failed", _why(text, materials), seconds)
    outcome = "cloned" if "$ git clone" in text else "updated"
    return Pulled(home.user, outcome, "", seconds)


def _stop(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _why(output: str, materials: CourseMaterials) -> str:
    """The failure as a person reads it: the known cases in words, else git's last lines."""
    folder = f"~/{materials.target}"
    if "not a git repository" in output:
        return f"{folder} exists and is not a clone of the course's repository: left as it is"
    if "Permission denied" in output or "PermissionError" in output:
        return f"{folder} could not be written by the student (permission denied): left as it is"
    if "BranchExistError" in output or "BranchResolveError" in output:
        return f"the repository has no branch {materials.branch!r}, or could not be read"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-DETAIL_CHARS:]


async def pull_homes(
    homes: Iterable[Home],
    materials: CourseMaterials,
    jobs: int = DEFAULT_JOBS,
    locks: HomeLocks | None = None,
    python: str = sys.executable,
) -> list[Pulled]:
    """Every home pulled, at most ``jobs`` at once; one result per home, in order."""
    room = asyncio.Semaphore(max(1, jobs))

    async def one(home: Home) -> Pulled:
        async with room:
            pulled = await pull_home(home, materials, locks, python)
        if not pulled.ok:
            log.warning("materials %s: %s", materials.repo, pulled.line())
        return pulled

    return list(await asyncio.gather(*(one(home) for home in homes)))


def summary(pulled: list[Pulled]) -> str:
    """One line for a person: how many homes got the materials, and each that did not."""
    counts: dict[str, int] = {}
    for result in pulled:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    said = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items())) or "no homes"
    problems = [result.line() for result in pulled if not result.ok]
    return "\n".join([f"materials: {said}", *(f"  {line}" for line in problems)])


class PullRounds:
    """Which students the accounting service's prewarm pulls at each tick.

    A class is prewarmed at every tick (30 s) while a session is near; pulling 500 homes at
    each would be 40 rounds of git for nothing. So the first tick of a prewarm window pulls
    every student, and the next ticks only those the last round missed (failed, timed out, or
    busy with a pull of their own server's start), until the next window."""

    def __init__(self) -> None:
        self._round_at: dict[str, float] = {}
        self._missed: dict[str, set[str]] = {}

    def who(self, name: str, members: Iterable[str], window_seconds: float, now: float) -> list[str]:
        last = self._round_at.get(name)
        if last is None or now - last >= max(window_seconds, 60.0):
            self._round_at[name] = now
            return list(members)
        missed = self._missed.get(name, set())
        return [member for member in members if member in missed]

    def record(self, name: str, pulled: list[Pulled]) -> None:
        self._missed[name] = {result.user for result in pulled if not result.ok}


_starting: set[asyncio.Task] = set()
_start_room: asyncio.Semaphore | None = None
#: Pulls at server starts at once, in the hub: a class pressing Start at 9:00 must not make
#: the hub's machine run 50 git processes beside 50 starting servers.
START_JOBS = 4


def pull_at_start(
    home: Home, materials: list[CourseMaterials], locks: HomeLocks, logger: logging.Logger = log
) -> asyncio.Task:
    """Pull ``materials`` into ``home`` as its student in the background of a server's start
    (it does not wait: the server starts meanwhile, the files appear when the pull is done);
    each result is logged to ``logger`` (the hub's own, where its admins read)."""
    global _start_room
    if _start_room is None:
        _start_room = asyncio.Semaphore(START_JOBS)
    room = _start_room

    async def run() -> None:
        async with room:
            for each in materials:
                pulled = await pull_home(home, each, locks)
                level = logging.INFO if pulled.ok or pulled.outcome == "busy" else logging.WARNING
                logger.log(
                    level, "materials %s at %s's server start: %s", each.repo, home.user, pulled.line()
                )

    task = asyncio.get_running_loop().create_task(run())
    _starting.add(task)  # held until done: the loop keeps only weak references to tasks
    task.add_done_callback(_starting.discard)
    return task


#: The pod's postStart script: for each (repository, branch, target, seconds, protocol) given
#: after it as arguments (never pasted into the script: nothing in them is read by the shell),
#: nbgitpuller's ``gitpuller`` as the pod's own user, stopped after its time, its output kept in
#: the pod's /tmp. It always exits 0: a failed postStart hook would make Kubernetes kill the
#: student's server.
POST_START_SCRIPT = (
    'log="${TMPDIR:-/tmp}/parhelion-materials.log"; '
    'while [ "$#" -ge 5 ]; do '
    'GIT_TERMINAL_PROMPT=0 GIT_ALLOW_PROTOCOL="$5" GIT_CEILING_DIRECTORIES="${3%/*}" '
    'timeout -s KILL "$4" gitpuller -- "$1" "$2" "$3" >>"$log" 2>&1 '
    '|| echo "parhelion: $1 ($2) not pulled into $3" >>"$log"; '
    "shift 5; done; exit 0"
)


#: Of the spawner's start_timeout, what the postStart hook leaves for the image, the volume
#: and jupyterhub-singleuser itself.
START_MARGIN_SECONDS = 60


def post_start_hook(materials: list[CourseMaterials], home: str, start_timeout: float | None = None) -> dict:
    """KubeSpawner's ``lifecycle_hooks["postStart"]``: the materials pulled into ``home`` in
    the student's pod, as z2jh documents for nbgitpuller, at every start of their server.

    Kubernetes does not call the container running until its postStart hook returns, so the
    hook's pulls together are held under the spawner's ``start_timeout`` (less a margin): a
    repository that hangs must cost the student their materials, never their server."""
    budget = None
    if start_timeout is not None and materials:
        budget = max(10, int((start_timeout - START_MARGIN_SECONDS) // len(materials)))
    arguments: list[str] = []
    for each in materials:
        protocol = "file" if each.local else "https"
        target = f"{home.rstrip('/')}/{each.target}"
        seconds = each.timeout_seconds if budget is None else min(each.timeout_seconds, budget)
        arguments += [each.repo, each.branch, target, str(seconds), protocol]
    return {"exec": {"command": ["sh", "-c", POST_START_SCRIPT, "parhelion-materials", *arguments]}}
