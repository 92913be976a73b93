"""Start, watch and stop the local platform's processes, leaving no orphan.

The supervisor makes itself a Linux *child subreaper*: a process that outlives its
parent (a notebook server whose hub died, a Dask worker whose gateway died) is
re-parented to the supervisor instead of init, so a final sweep of the supervisor's
descendants finds and stops every last one of them.

A subreaper must also reap them: an adopted process that exits stays a zombie until its new
parent waits for it, and a zombie still answers ``kill(pid, 0)``. A hub restarted after a
kill -9 then cannot stop the proxy its predecessor left ("Failed to stop proxy at pid=...")
and takes the servers it re-adopted and stops for alive. ``Reaper`` waits for them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36


class StartupError(RuntimeError):
    """A service did not come up; the message says which and quotes its log."""


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux only); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - non-Linux
        return False


class Reaper:
    """Reaps the zombie children this process inherited as a subreaper, every ``interval``.

    ``own()`` names the children not to touch: the services' own processes, which their
    ``Popen`` waits for (it keeps their exit codes). It runs in a thread for the whole life
    of the platform, shutdown included: the hub stops the servers it re-adopted at its
    shutdown and waits for each to be gone, which a zombie never is.
    """

    def __init__(self, own: Callable[[], set[int]], interval: float = 0.2):
        self.own = own
        self.interval = interval
        self.reaped: list[int] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reaper", daemon=True)

    def reap(self) -> list[int]:
        """Wait for every zombie child not in ``own()``; their pids."""
        own = self.own()
        reaped = []
        try:
            children = psutil.Process().children()
        except psutil.Error:  # pragma: no cover - our own process
            return reaped
        for child in children:
            try:
                if child.pid in own or child.status() != psutil.STATUS_ZOMBIE:
                    continue
                if os.waitpid(child.pid, os.WNOHANG)[0] == child.pid:
                    reaped.append(child.pid)
            except (psutil.Error, ChildProcessError):
                continue
        if reaped:
            log.debug("reaped %d orphaned process(es): %s", len(reaped), reaped)
            self.reaped.extend(reaped)
        return reaped

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.reap()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self.reap()


class ManagedProcess:
    """One service process: its command, environment and log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        log_path: Path,
        cwd: Path | None = None,
        stop_timeout: float = 30.0,
    ):
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self.popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            log_file.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
            log_file.flush()
            # Own session: a Ctrl-C in the terminal reaches only the supervisor, which
            # then stops services in order instead of all at once.
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.debug("%s started (pid %s): %s", self.name, self.pid, " ".join(self.argv))

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def stop(self) -> None:
        """SIGTERM, wait for a clean exit (the hub stops its servers), then SIGKILL."""
        if not self.running():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", self.name, self.stop_timeout)
            self.popen.kill()
            self.popen.wait(10)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:])

    def wait_ready(self, url: str, timeout: float, *, ok_statuses: Sequence[int] = range(200, 500)) -> None:
        """Wait until ``url`` answers with an accepted status, the process dies, or time is up."""
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status in ok_statuses:
                        return
                    last_error = f"HTTP {answer.status}"
            except urllib.error.HTTPError as exc:
                if exc.code in ok_statuses:
                    return
                last_error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(getattr(exc, "reason", exc))
            time.sleep(0.2)
        raise StartupError(
            f"{self.name} was not ready at {url} after {timeout:.0f} s ({last_error}); "
            f"end of {self.log_path}:\n{self.log_tail()}"
        )

    def wait_running(self, seconds: float) -> None:
        """For a service with nothing to ask: it must still be running after ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._check_alive()
            time.sleep(0.1)
        self._check_alive()

    def _check_alive(self) -> None:
        if not self.running():
            raise StartupError(
                f"{self.name} exited with code {self.exit_code()} while starting; "
                f"end of {self.log_path}:\n{self.log_tail()}"
            )


def stop_descendants(timeout: float = 10.0) -> list[str]:
    """Terminate, then kill, every remaining descendant; return what was found."""
    me = psutil.Process()
    leftovers = me.children(recursive=True)
    found = []
    for proc in leftovers:
        try:
            found.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(leftovers, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=5)
    return found


def tcp_port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as servers set)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_tcp_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free now (held open together, so never the same twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
