"""Starts under load on the real local platform: the line, and a proxy that stops answering.

One platform with ``local.concurrent_spawns: 1`` (and no Dask gateway, which these tests do
not use). Students are started through the hub's REST API as `parhelion class prewarm` does,
and everything is read from the hub directly (its own port, not through the proxy, which the
second test stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from datetime import datetime

import aiohttp
import pytest

from tests.platform import platform_config_text, running_platform

pytestmark = pytest.mark.integration
STUDENTS = ["ana", "ben", "dee", "eve"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    text = platform_config_text(
        sample_files=4,
        **{
            "dask_gateway:\n  enabled: true\n": "dask_gateway:\n  enabled: false\n",
            "  users: [demo]\n": f"  users: [demo, {', '.join(STUDENTS)}]\n",
            "  trusted: true\n": "  trusted: true\n  concurrent_spawns: 1\n",
        },
    )
    with running_platform(tmp_path_factory.mktemp("spawnload"), text) as running:
        yield running


def hub_api(platform) -> str:
    return f"http://127.0.0.1:{platform.runtime['ports']['hub_api']}/hub/api"


def admin_session(platform) -> aiohttp.ClientSession:
    token = (platform.state / "secrets" / "admin-api-token").read_text().strip()
    return aiohttp.ClientSession(
        headers={"Authorization": f"token {token}"}, timeout=aiohttp.ClientTimeout(total=300)
    )


async def request_start(session, api: str, name: str) -> None:
    async with session.post(f"{api}/users", json={"usernames": [name]}) as answer:
        assert answer.status in (201, 409), await answer.text()
    async with session.post(f"{api}/users/{name}/server") as answer:
        assert answer.status in (201, 202), await answer.text()


async def server(session, api: str, name: str) -> dict:
    async with session.get(f"{api}/users/{name}") as answer:
        return (await answer.json())["servers"].get("") or {}


async def wait_ready(session, api: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await server(session, api, name)
        if state.get("ready"):
            return
        assert state, f"{name}'s server is gone: the hub gave up on it"
        await asyncio.sleep(0.5)
    raise AssertionError(f"{name}'s server not ready after {timeout} s")


async def progress_events(session, api: str, name: str) -> list[dict]:
    """The spawn-pending page's event stream, until it ends (ready or failed)."""
    deadline = time.monotonic() + 10
    while not (await server(session, api, name)).get("pending"):
        assert time.monotonic() < deadline, f"{name}'s spawn never pending"
        await asyncio.sleep(0.05)
    events = []
    async with session.get(f"{api}/users/{name}/server/progress") as answer:
        assert answer.status == 200, await answer.text()
        async for line in answer.content:
            if line.startswith(b"data:"):
                events.append(json.loads(line[5:]))
    return events


async def stop(session, api: str, names) -> None:
    for name in names:
        async with session.delete(f"{api}/users/{name}/server") as answer:
            assert answer.status in (202, 204), await answer.text()
    for name in names:
        deadline = time.monotonic() + 60
        while await server(session, api, name) and time.monotonic() < deadline:
            await asyncio.sleep(0.3)


def test_a_student_behind_another_sees_their_place_in_line(platform):
    """Two students press Start together on a machine that starts one server at a time: the
    second reads "You are number 1 in line" on the spawn-pending page, then that their server
    is starting; nobody gets a 429 and both are ready (the line moving down: test_spawnqueue)."""
    api = hub_api(platform)

    async def scenario():
        async with admin_session(platform) as session:
            first = asyncio.create_task(request_start(session, api, "ana"))
            await asyncio.sleep(0.5)  # ana is first in line
            requested = time.time()
            second = asyncio.create_task(request_start(session, api, "ben"))
            events = await progress_events(session, api, "ben")
            await asyncio.gather(first, second)
            for name in ("ana", "ben"):
                await wait_ready(session, api, name, 120)
            started = (await server(session, api, "ben"))["started"]
            await stop(session, api, ["ana", "ben"])
            return events, requested, started

    events, requested, started = asyncio.run(scenario())
    # ben's server started when his turn came, not when he joined the line: the meter charges
    # a server from `started`, and ana's start (a Jupyter server's import) took seconds
    waited = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() - requested
    assert waited > 1.5, (started, requested)
    messages = [e.get("message", "") for e in events]
    assert messages[:3] == [
        "Server requested",
        "You are number 1 in line; 1 server is starting (this machine starts 1 at a time).",
        "Your turn: your server is starting.",
    ], messages
    assert events[-1].get("ready"), events


def test_a_route_addition_outlasts_a_proxy_that_hangs(platform):
    """The proxy is frozen (SIGSTOP) while a student's server starts, past the hub's own 30 s
    limit, and killed: JupyterHub restarts it, and the route addition, repeated, reaches the
    new one (before, the hub stopped the student's server: "Failed to add eve to proxy!").
    A proxy that runs again (SIGCONT) after a shorter freeze is tests/hub/test_proxy.py's."""
    api = hub_api(platform)
    routes_url = f"http://127.0.0.1:{platform.runtime['ports']['proxy_api']}/api/routes"
    proxy_token = (platform.state / "secrets" / "proxy-auth-token").read_text().strip()
    pid_file = platform.state / "hub" / "proxy.pid"

    log = platform.state / "logs" / "jupyterhub.log"

    async def frozen_during_start(session, name: str, frozen: float, then: signal.Signals) -> None:
        """Freeze the proxy before the hub adds the route, keep it frozen ``frozen`` s after
        the hub began adding it, then ``then`` it."""
        proxy = int(pid_file.read_text())
        starting = asyncio.create_task(request_start(session, api, name))
        os.kill(proxy, signal.SIGSTOP)  # before the server answers: its route comes after
        try:
            deadline = time.monotonic() + 120
            while f"Adding user {name} to proxy" not in log.read_text(errors="replace"):
                assert time.monotonic() < deadline, f"the hub never added {name}'s route"
                await asyncio.sleep(0.2)
            await asyncio.sleep(frozen)
        finally:
            os.kill(proxy, then)
            if then != signal.SIGCONT:
                with contextlib.suppress(ProcessLookupError):  # dead already, as it should be
                    os.kill(proxy, signal.SIGCONT)
        await starting
        await wait_ready(session, api, name, 120)
        async with (
            aiohttp.ClientSession() as direct,
            direct.get(routes_url, headers={"Authorization": f"token {proxy_token}"}) as answer,
        ):
            routes = await answer.json()
        assert f"/user/{name}" in routes, sorted(routes)

    async def scenario():
        async with admin_session(platform) as session:
            # longer than JupyterHub's own limit (30 s + 10% jitter), then killed and restarted
            await frozen_during_start(session, "eve", 35, signal.SIGKILL)
            await stop(session, api, ["eve"])

    asyncio.run(scenario())
    text = log.read_text(errors="replace")
    assert "The proxy did not take POST /user/eve (attempt 1: TimeoutError)" in text
    assert "Failed to add" not in text
