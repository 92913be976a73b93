"""Stopping a local server stops everything started from it, as a budget cap needs.

A user's ``nohup`` job and ``setsid`` double-forked daemons (one with its environment cleared)
are started from a kernel of a real server on the real local platform; the server is then
stopped through the hub's REST API, as the enforcer stops it. Before the fix only the server's
pid was signalled and all three ran on.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from platform_tools.clients.hubadmin import HubAdmin
from platform_tools.clients.hubclient import HubUser
from platform_tools.local.servergroup import MARKER, ServerGroup, group_base, server_id
from tests.platform import platform_config_text, running_platform

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


@pytest.mark.integration
def test_stopping_a_server_through_the_hub_api_stops_its_nohup_jobs_and_daemons(tmp_path):
    text = platform_config_text(
        sample_files=4, **{"dask_gateway:\n  enabled: true\n": "dask_gateway:\n  enabled: false\n"}
    )
    escapees: dict[str, int] = {}
    in_cgroup: list[Path] = []
    with running_platform(tmp_path, text) as platform:
        base = group_base(platform.state)

        async def scenario() -> None:
            async with HubUser(platform.url, "demo", platform.password()) as user:
                await user.login()
                await user.start_server()
                kernel = await user.start_kernel()
                outputs = await kernel.execute(START_ESCAPEES, timeout=60)
                started = json.loads("".join(o.get("text", "") for o in outputs if o.get("name") == "stdout"))
                escapees.update(started)
                assert len(alive(started.values())) == 3, "all three run while the server runs"
                in_cgroup.extend(Path("/sys/fs/cgroup").glob(f"*/{base}/*"))
                token = (platform.state / "secrets" / "admin-api-token").read_text().strip()
                async with HubAdmin(f"{platform.url}/hub/api", token) as admin:
                    assert await admin.stop_server("demo")  # as the enforcer: DELETE .../server

        try:
            asyncio.run(scenario())
            deadline = time.monotonic() + 15
            while alive(escapees.values()) and time.monotonic() < deadline:
                time.sleep(0.3)
            assert len(escapees) == 3
            left = {name: pid for name, pid in escapees.items() if alive([pid])}
            assert not left, f"outlived the stop: {left}"
            marked = [p.pid for p in psutil.process_iter() if _marker(p.pid) == server_id(base, "demo", "")]
            assert not marked
            # here a cgroup hierarchy is writable: the server ran in a cgroup, gone with it
            assert in_cgroup, "the server ran in a cgroup of its own"
            assert not list(Path("/sys/fs/cgroup").glob(f"*/{base}/*"))
        finally:
            for pid in alive(escapees.values()):
                os.kill(pid, signal.SIGKILL)


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
