"""The supervisor's restart policy and its reaping of orphans, with real processes.

A restartable service that dies is started again, as often as the policy allows within its
window; once more takes the platform down, as does the death of a service that is not
restartable. Orphans re-parented to the supervisor (it is a subreaper) are reaped, or a
restarted hub takes them for alive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil

from platform_tools.local.runtime import LocalRuntime, Ports
from platform_tools.local.statedir import StateDir
from platform_tools.services.local import Service
from platform_tools.services.processes import ManagedProcess
from platform_tools.services.supervisor import RestartPolicy, Supervisor


def sleeper(state: StateDir, name: str, restartable: bool) -> Service:
    """A service that runs until it is killed and is ready once it has run for 0.3 s."""
    process = ManagedProcess(
        name,
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env=dict(os.environ),
        log_path=state.logs / f"{name}.log",
        stop_timeout=5,
    )
    return Service(process, ready_url=None, ready_timeout=0.3, restartable=restartable)


class Watched:
    """A supervisor over ``services`` whose ``watch`` runs in a thread (no signal handlers)."""

    def __init__(self, root: Path, services: list[Service], policy: RestartPolicy):
        self.state = StateDir(root)
        self.state.logs.mkdir(parents=True, exist_ok=True)
        runtime = LocalRuntime(str(root), "", "", "", "127.0.0.1", Ports(*range(1, 8)))
        self.supervisor = Supervisor(runtime, self.state, services, policy)
        self.code: list[int] = []

    def __enter__(self) -> Watched:
        self.supervisor.start_all()
        self.thread = threading.Thread(target=lambda: self.code.append(self.supervisor.watch()))
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.supervisor.stop.set()
        self.thread.join(30)
        for service in self.supervisor.started:
            service.process.stop()

    def pid(self, name: str) -> int:
        return json.loads(self.state.runtime_file.read_text())["pids"][name]

    def killed_and_back(self, name: str, timeout: float = 20) -> int:
        """SIGKILL to ``name``; its new pid once it runs again."""
        old = self.pid(name)
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.pid(name)
            if new != old and psutil.pid_exists(new):
                return new
            time.sleep(0.1)
        raise AssertionError(f"{name} was not restarted within {timeout} s")


def test_a_killed_restartable_service_is_restarted_until_a_crash_loop_stops_the_platform(tmp_path, capfd):
    services = [sleeper(StateDir(tmp_path), "steady", False), sleeper(StateDir(tmp_path), "flaky", True)]
    with Watched(tmp_path, services, RestartPolicy(max_restarts=2, window_seconds=60)) as watched:
        first = watched.pid("flaky")
        pids = [watched.killed_and_back("flaky"), watched.killed_and_back("flaky")]
        assert len({first, *pids}) == 3 and watched.code == []
        steady = watched.pid("steady")
        os.kill(pids[-1], signal.SIGKILL)  # a third death within the window: a crash loop
        watched.thread.join(20)
        assert watched.code == [1]
        assert psutil.pid_exists(steady)  # the caller (run) stops the others
    said = capfd.readouterr().err
    assert said.count("parhelion up: flaky exited (code -9); restarting it") == 2
    assert "flaky exited (code -9); it was restarted 2 times in 1 min; stopping the platform" in said


def test_restarts_older_than_the_window_are_forgiven(tmp_path):
    services = [sleeper(StateDir(tmp_path), "flaky", True)]
    with Watched(tmp_path, services, RestartPolicy(max_restarts=1, window_seconds=1.5)) as watched:
        watched.killed_and_back("flaky")
        time.sleep(2)
        watched.killed_and_back("flaky")
        assert watched.code == []


def test_a_service_that_is_not_restartable_stops_the_platform_at_once(tmp_path, capfd):
    services = [sleeper(StateDir(tmp_path), "gateway", False)]
    with Watched(tmp_path, services, RestartPolicy()) as watched:
        pid = watched.pid("gateway")
        os.kill(pid, signal.SIGKILL)
        watched.thread.join(20)
        assert watched.code == [1] and watched.pid("gateway") == pid
    assert "gateway exited (code -9); it is not restartable; stopping the platform" in capfd.readouterr().err


# The supervisor as a subreaper, in a process of its own (pytest must not adopt orphans):
# a service leaves a child behind and exits (as a killed hub leaves its proxy); the child
# then exits too, and must not stay a zombie.
ORPHAN_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import psutil
    from pathlib import Path
    from platform_tools.services.processes import ManagedProcess, Reaper, become_subreaper

    assert become_subreaper()
    service = ManagedProcess(
        "hub", ["sh", "-c", "sleep 1 & echo $! > orphan.pid; exec sleep 600"],
        env=dict(os.environ), log_path=Path("hub.log"),
    )
    reaper = Reaper(lambda: {service.pid}, interval=0.1)
    if sys.argv[1] == "reaped":
        reaper.start()
    service.start()
    while not Path("orphan.pid").exists() or not Path("orphan.pid").read_text().strip():
        time.sleep(0.05)
    orphan = int(Path("orphan.pid").read_text())
    service.popen.kill()
    service.popen.wait()
    time.sleep(2.5)  # the orphan's sleep is over
    try:
        status = psutil.Process(orphan).status()
    except psutil.NoSuchProcess:
        status = "gone"
    reaper.close()
    print(json.dumps({"orphan": orphan, "status": status, "reaped": reaper.reaped}))
    """
)


def orphan_after_exit(tmp_path: Path, mode: str) -> dict:
    (tmp_path / mode).mkdir()
    result = subprocess.run(
        [sys.executable, "-c", ORPHAN_SCRIPT, mode],
        cwd=tmp_path / mode,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_orphans_that_exit_are_reaped_not_left_zombies(tmp_path):
    unreaped = orphan_after_exit(tmp_path, "unreaped")
    assert unreaped["status"] == psutil.STATUS_ZOMBIE  # what a restarted hub took for a live proxy
    reaped = orphan_after_exit(tmp_path, "reaped")
    assert reaped["status"] == "gone" and reaped["orphan"] in reaped["reaped"]
