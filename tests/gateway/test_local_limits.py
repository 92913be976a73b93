"""The per-user aggregate limits and the budget check on a real local dask-gateway-server
(Parhelion's local backend, configured by configure_local_gateway, with real Dask schedulers
and workers), as a user's client reaches it; the accounting service is a stand-in whose answers
can be slowed. Basic auth stands in for the hub (the authenticator is not what is tested).
The demo user (researchers) may have 2 clusters and 4 cores, and has a budget."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from platform_tools.contract.services import GATEWAY_PREFIX, AccountingPath, accounting_api
from tests.platform import REPO_ROOT, platform_config_text, processes_of
from tests.stand_in_server import serving_in_thread

pytestmark = pytest.mark.integration
PASSWORD = "local-limits"
ACCOUNTING_TIMEOUT = 1.0

CONFIG = """
from platform_tools.gateway.local import configure_local_gateway
from platform_tools.local.runtime import LocalRuntime, Ports

runtime = LocalRuntime(
    state_dir={state!r}, hub_config_dir="", notebooks_dir="", proxy_command="", public_host="127.0.0.1",
    ports=Ports(hub=1, hub_api=1, proxy_api=1, gateway={http}, gateway_scheduler={tcp}, s3=1, accounting=1),
)
configure_local_gateway(c, runtime=runtime)
c.AggregateLimitsMixin.accounting_url = {accounting!r}
c.AggregateLimitsMixin.accounting_timeout_seconds = {timeout}
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = {password!r}
c.LocalBackend.cluster_heartbeat_period = 2
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Accounting:
    """The accounting service's cluster check: allows, after ``delay`` seconds."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.asked = 0

    def app(self) -> web.Application:
        app = web.Application()
        path = urlsplit(accounting_api("http://x", AccountingPath.CHECK_CLUSTER)).path
        app.router.add_get(path, self.check)
        return app

    async def check(self, request: web.Request) -> web.Response:
        self.asked += 1
        await asyncio.sleep(self.delay)
        return web.json_response({"allowed": True, "message": ""})


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """(address, proxy address, accounting stand-in) of a running local gateway."""
    from platform_tools.local.statedir import StateDir

    state = StateDir(tmp_path_factory.mktemp("gateway-state"))
    state.prepare()
    state.platform_file.write_text(platform_config_text(sample_files=4))
    accounting = Accounting()
    http, tcp = free_port(), free_port()
    with serving_in_thread(accounting.app()) as accounting_url:
        config = Path(state.root) / "dask_gateway_config.py"
        config.write_text(
            CONFIG.format(
                state=str(state.root),
                http=http,
                tcp=tcp,
                accounting=accounting_url,
                timeout=ACCOUNTING_TIMEOUT,
                password=PASSWORD,
            )
        )
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PARHELION_STATE_DIR": str(state.root)}
        log = open(Path(state.root) / "gateway.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "dask-gateway-server"), "-f", str(config)],
            cwd=state.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        address = f"http://127.0.0.1:{http}{GATEWAY_PREFIX}"
        try:
            asyncio.run(_healthy(address, server))
            yield address, f"gateway://127.0.0.1:{tcp}", accounting, Path(state.root)
        finally:
            server.terminate()  # the gateway stops its clusters on shutdown
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()


async def _healthy(address: str, server: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            assert server.poll() is None, "the gateway exited"
            try:
                async with session.get(f"{address}/api/health") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not start")


def as_demo(gateway):
    from dask_gateway import Gateway
    from dask_gateway.auth import BasicAuth

    address, proxy, _, _ = gateway
    return Gateway(address, proxy, auth=BasicAuth("demo", PASSWORD), asynchronous=True)


async def stop_all(client, state: Path) -> None:
    """Stop the user's clusters and wait until their processes are gone (until then they
    still count against the user's quota)."""
    for report in await client.list_clusters():
        await client.stop_cluster(report.name)
    for _ in range(300):
        if not dask_processes(state, "scheduler") and not dask_processes(state, "worker"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the clusters' processes outlived their stop")


def dask_processes(state: Path, role: str) -> int:
    """Dask scheduler or worker processes of this gateway (its clusters' environment marks them)."""
    count = 0
    for proc in processes_of(state):
        try:
            line = proc.cmdline()
        except Exception:
            continue
        count += any(part.endswith("dask") for part in line[:2]) and role in line
    return count


def test_ten_concurrent_new_clusters_make_exactly_two(gateway):
    """The budget check answers in 0.2 s: the ten requests overlap while they wait for it."""
    gateway[2].delay = 0.2

    async def scenario():
        async with as_demo(gateway) as client:
            try:
                results = await asyncio.gather(*(client.submit() for _ in range(10)), return_exceptions=True)
                listed = await client.list_clusters()
            finally:
                await stop_all(client, gateway[3])
            return results, listed

    results, listed = asyncio.run(scenario())
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [str(r) for r in results if isinstance(r, BaseException)]
    assert len(made) == 2 and len(listed) == 2, results
    assert len(refused) == 8 and all("the most your quota allows (2)" in r for r in refused), refused


def test_two_clusters_scaled_past_the_cores_at_once_stay_within(gateway):
    """Both clusters ask for 4 workers at once; 4 cores are two schedulers and two workers."""
    gateway[2].delay = 0.0

    async def scenario():
        async with as_demo(gateway) as client:
            try:
                a, b = [await client.new_cluster() for _ in range(2)]
                await asyncio.gather(a.scale(4), b.scale(4))
                counts = []
                deadline = time.monotonic() + 10  # a few heartbeats
                while time.monotonic() < deadline:
                    counts.append(dask_processes(gateway[3], "worker"))
                    await asyncio.sleep(0.2)
                await asyncio.gather(a.close(), b.close())
            finally:
                await stop_all(client, gateway[3])
            return counts

    counts = asyncio.run(scenario())
    assert max(counts) <= 2 and counts[-1] == 2, counts


def test_a_slow_budget_check_does_not_hold_up_other_requests(gateway):
    """While one new_cluster() waits 0.8 s for the accounting service, the gateway answers
    another request at once; past the timeout a budgeted user is refused, with the reason."""
    accounting = gateway[2]

    async def scenario():
        async with as_demo(gateway) as client:
            try:
                accounting.delay = 0.8
                waiting = asyncio.ensure_future(client.submit())
                await asyncio.sleep(0.2)
                started = time.monotonic()
                await client.list_clusters()
                meanwhile = time.monotonic() - started
                await waiting
                accounting.delay = ACCOUNTING_TIMEOUT + 2
                try:
                    await client.submit()
                    refusal = None
                except Exception as error:
                    refusal = str(error)
            finally:
                accounting.delay = 0.0
                await stop_all(client, gateway[3])
            return meanwhile, refusal

    meanwhile, refusal = asyncio.run(scenario())
    assert meanwhile < 0.3, meanwhile
    assert refusal is not None and "The accounting service does not answer" in refusal, refusal
