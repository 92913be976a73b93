"""Route additions against a real configurable-http-proxy that hangs (SIGSTOP), without a hub.

The hub-level test (tests/hub/test_spawn_load.py) freezes the platform's own proxy during a
student's start; here the proxy class alone, with short timeouts, for what it repeats and
what it does not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from platform_tools.hub.proxy import PatientProxy, ProxyUnanswered
from platform_tools.services.supervisor import find_proxy_command

pytestmark = pytest.mark.integration
TOKEN = "test-proxy-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chp():
    """A real configurable-http-proxy on free loopback ports: (process, api_url)."""
    api, public = free_port(), free_port()
    process = subprocess.Popen(
        [find_proxy_command(), "--ip", "127.0.0.1", "--port", str(public)]
        + ["--api-ip", "127.0.0.1", "--api-port", str(api)],
        env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{api}"
    deadline = time.monotonic() + 30
    while True:
        try:
            request = urllib.request.Request(f"{url}/api/routes", headers={"Authorization": f"token {TOKEN}"})
            urllib.request.urlopen(request, timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "configurable-http-proxy did not start"
            time.sleep(0.2)
    try:
        yield process, url
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.kill()
        process.wait(10)


def proxy(api_url: str, token: str = TOKEN, **traits) -> PatientProxy:
    return PatientProxy(api_url=api_url, auth_token=token, should_start=False, **traits)


def test_a_route_added_while_the_proxy_hangs_is_repeated_until_it_answers(chp, caplog):
    process, url = chp

    async def scenario():
        patient = proxy(url, route_attempt_timeout=1.0, route_patience=60)
        patient.log = logging.getLogger("proxy-test")
        os.kill(process.pid, signal.SIGSTOP)
        asyncio.get_running_loop().call_later(3, os.kill, process.pid, signal.SIGCONT)
        started = time.monotonic()
        await patient.add_route("/user/ana/", "http://127.0.0.1:9999", {"user": "ana", "server_name": ""})
        waited = time.monotonic() - started
        routes = await patient.get_all_routes()
        return waited, routes

    with caplog.at_level(logging.WARNING, "proxy-test"):
        waited, routes = asyncio.run(scenario())
    assert waited >= 2.5 and routes["/user/ana/"]["target"] == "http://127.0.0.1:9999"
    assert "The proxy did not take POST /user/ana (attempt 1: TimeoutError" in caplog.text


def test_a_refusal_is_not_repeated_and_a_users_route_outlives_the_patience(chp, caplog):
    process, url = chp

    async def scenario():
        wrong = proxy(url, token="not-the-token", route_patience=60)
        started = time.monotonic()
        with pytest.raises(Exception, match="403"):  # refused: said at once, not retried
            await wrong.add_route("/user/ben/", "http://127.0.0.1:9999", {"user": "ben"})
        assert time.monotonic() - started < 5
        patient = proxy(url, route_attempt_timeout=0.5, route_patience=2)
        patient.log = logging.getLogger("proxy-test")
        os.kill(process.pid, signal.SIGSTOP)
        # a service's route: the error reaches the hub, as before
        with pytest.raises(ProxyUnanswered, match="did not take POST /services/x in 2 s"):
            await patient.add_route("/services/x/", "http://127.0.0.1:9999", {"service": "x"})
        # a student's route: their ready server is kept; check_routes adds the route later
        await patient.add_route("/user/cy/", "http://127.0.0.1:9999", {"user": "cy"})

    with caplog.at_level(logging.ERROR, "proxy-test"):
        asyncio.run(scenario())
    assert "the hub's route check will add it later" in caplog.text
