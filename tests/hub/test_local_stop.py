"""Stopping a local server stops everything started from it, as a budget cap needs.

The fallback without a cgroup is tested here; the real hub and server (a ``nohup`` job and
``setsid`` daemons started from a kernel, the server stopped through the hub's REST API) share
the platform of tests/hub/test_local_resource_limits.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from platform_tools.local.servergroup import MARKER, ServerGroup, server_id

START_ESCAPEES = r"""
import json, subprocess, time
subprocess.run("nohup sleep 1000 >/dev/null 2>&1 & echo $! > nohup.pid", shell=True)
daemon = "setsid -f sh -c 'echo $$ > daemon.pid; exec sleep 1001' </dev/null >/dev/null 2>&1"
subprocess.run(daemon, shell=True)
subprocess.run(
    "env -i setsid -f /bin/sh -c 'echo $$ > bare.pid; exec sleep 1002' </dev/null >/dev/null 2>&1", shell=True
)
time.sleep(1)
print(json.dumps({name: int(open(name + ".pid").read()) for name in ("nohup", "daemon", "bare")}))
"""


def alive(pids) -> list[int]:
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except psutil.Error:
            continue
    return found


def _marker(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            for item in handle.read().split(b"\0"):
                if item.startswith(MARKER.encode() + b"="):
                    return item.split(b"=", 1)[1].decode()
    except OSError:
        return None
    return None


SERVER = r"""
import os, subprocess, sys, time
subprocess.run("nohup sleep 1000 >/dev/null 2>&1 &", shell=True)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"])
subprocess.run("setsid -f sleep 1001 </dev/null >/dev/null 2>&1", shell=True)
print("ready", flush=True)
time.sleep(1000)
"""


@pytest.mark.unit
def test_without_a_cgroup_the_tree_its_sessions_and_marked_daemons_are_stopped(tmp_path):
    """The fallback where no cgroup can be made: a server (its own session, as JupyterHub starts
    it) with a child, a nohup job in its session and a setsid daemon that keeps the marker."""
    group = ServerGroup(server_id(f"test-{os.getpid()}", "demo", ""), cgroup=None)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        env={**os.environ, **group.environment()},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        known = group.related(server.pid)
        assert len(known) >= 4, known  # server, python child, nohup sleep, setsid sleep
        server.send_signal(signal.SIGTERM)  # the hub stops the main pid: the rest is orphaned
        server.wait(10)
        group.stop(known, term_seconds=1)
        assert not alive(known - {server.pid})
        assert not [p.pid for p in psutil.process_iter() if _marker(p.pid) == group.identity]
    finally:
        for pid in alive(group.related(None)):
            os.kill(pid, signal.SIGKILL)
        if server.poll() is None:
            server.kill()
