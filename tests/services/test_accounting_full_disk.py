"""The accounting service with its ledger on a full filesystem (a real 1 MiB tmpfs).

Once, a full disk stopped ledger writes while the checks kept allowing: usage ran on
uncharged. Now the service refuses budgeted users while it cannot record, answers the
check all the same (the refusal's own row cannot be written either), and when space
comes back the next sample charges the whole gap: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time

import pytest
from tornado.httpclient import AsyncHTTPClient

from platform_tools.contract.services import AccountingPath
from platform_tools.contract.tokens import authorization
from platform_tools.ledger.store import Observation
from platform_tools.services.accounting.app import make_app
from platform_tools.services.accounting.factory import AccountingFactory, Settings
from platform_tools.services.processes import free_tcp_ports
from tests.platform import REPO_ROOT

pytestmark = pytest.mark.integration


class OneServerRunning:
    """Stand-in for the hub as a meter source: demo's server, running since ``started``.
    (The source is not what this test is about; the ledger's disk is.)"""

    def __init__(self, started: float):
        self.started = started

    async def observe(self) -> list[Observation]:
        return [Observation("server:demo::t", "demo", "server", self.started, 36.0)]


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path) -> None:
    with contextlib.suppress(OSError), open(path, "wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()


def test_a_full_disk_refuses_budgeted_spawns_and_loses_no_usage(small_disk, tmp_path):
    config = tmp_path / "platform.yaml"
    config.write_text((REPO_ROOT / "hub_config" / "platform.local.yaml").read_text())
    settings = Settings.kubernetes(
        {
            "PARHELION_CONFIG": str(config),
            "JUPYTERHUB_API_TOKEN": "internal-token",
            "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
            "PARHELION_DATABASE_URL": f"sqlite:///{small_disk / 'accounting.sqlite'}",
        }
    )
    port = free_tcp_ports(1)[0]

    async def scenario():
        started = time.time()
        accounting = AccountingFactory(settings).create(OneServerRunning(started))
        server = make_app(accounting).listen(port, address="127.0.0.1")
        client = AsyncHTTPClient()

        async def check(user: str) -> dict:
            url = f"http://127.0.0.1:{port}{accounting.prefix}{AccountingPath.CHECK_SPAWN}?user={user}"
            answer = await client.fetch(url, headers=authorization("internal-token"))
            return json.loads(answer.body)

        try:
            await accounting.sample()
            assert (await check("demo"))["allowed"]
            fill(small_disk / "filler")
            await asyncio.sleep(1.0)
            await accounting.sample()
            refused = await check("demo")  # answered, though its row cannot be written
            assert (refused["allowed"], refused["rule"]) == (False, "meter")
            assert "database or disk is full" in refused["message"]
            assert (await check("admin"))["allowed"]  # no budget, nothing at stake
            (small_disk / "filler").unlink()
            await asyncio.sleep(1.0)
            await accounting.sample()
            assert (await check("demo"))["allowed"]
            elapsed = accounting.ledger.last_sample_at() - started
            assert accounting.ledger.spend("demo", 0, time.time() + 60) == pytest.approx(36 * elapsed / 3600)
            assert elapsed >= 2.0  # the full-disk second is in it
        finally:
            server.stop()
            accounting.ledger.close()

    asyncio.run(scenario())
