"""A damaged ledger, a database that is not up yet, a kill -9: the accounting service keeps going.

Each test runs the real service process (``python -m platform_tools.services.accounting``, as
the local hub starts it) against a stand-in hub that reports one running server of ``demo``,
started a day ago, under a tiny budget with no grace: while the service runs, that server is
metered (a lifetime in the ledger) and stopped (a DELETE at the stand-in hub). Before the fix a
corrupt ledger made the process exit at start, so neither happened, on every restart.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from platform_tools.ledger.store import Ledger, Observation
from platform_tools.local.runtime import LocalRuntime, Ports
from platform_tools.local.statedir import StateDir
from platform_tools.services.processes import free_tcp_ports
from tests.platform import REPO_ROOT, PostgresServer, platform_config_text, stop_process
from tests.stand_in_server import serving_in_thread

pytestmark = pytest.mark.integration

CONFIG = platform_config_text(
    sample_files=4,
    **{
        "  sample_interval_seconds: 15\n": "  sample_interval_seconds: 1\n  enforce_interval_seconds: 1\n",
        "      usd: 25  ": "      usd: 0.01  ",
        "      grace_minutes: 5\n": "      grace_minutes: 0\n",
        "dask_gateway:\n  enabled: true\n": "dask_gateway:\n  enabled: false\n",
    },
)


class StandInHub:
    """The hub's REST API as the meter and the enforcer use it: users' servers, and stopping."""

    def __init__(self, servers: dict[str, str]):
        self.servers = dict(servers)  # username -> ISO start time of its default server
        self.stopped: list[str] = []
        self.lock = threading.Lock()

    def model(self, name: str) -> dict:
        started = self.servers.get(name)
        servers = {"": {"started": started, "user_options": {"profile": "small"}}} if started else {}
        return {"name": name, "servers": servers}

    def app(self) -> web.Application:
        async def users(request: web.Request) -> web.Response:
            with self.lock:
                items = [self.model(name) for name in sorted(self.servers)]
            if "pagination" in request.headers.get("Accept", ""):  # JupyterHub's paginated form
                offset = int(request.query.get("offset", 0))
                limit = int(request.query.get("limit", 200))
                page = items[offset : offset + limit]
                following = {"offset": offset + limit} if offset + limit < len(items) else None
                return web.json_response(
                    {
                        "items": page,
                        "_pagination": {
                            "offset": offset,
                            "limit": limit,
                            "total": len(items),
                            "next": following,
                        },
                    }
                )
            return web.json_response(items)

        async def user(request: web.Request) -> web.Response:
            with self.lock:
                return web.json_response(self.model(request.match_info["name"]))

        async def stop(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            with self.lock:
                self.servers.pop(name, None)
                self.stopped.append(name)
            return web.Response(status=204)

        app = web.Application()
        app.router.add_get("/hub/api/users", users)
        app.router.add_get("/hub/api/users/{name}", user)
        app.router.add_delete("/hub/api/users/{name}/server", stop)
        return app


class Service:
    """The accounting service process of a local platform whose hub is ``hub_url``."""

    def __init__(self, root: Path, hub_url: str):
        self.state = StateDir(root / "state")
        self.state.prepare()
        self.state.platform_file.write_text(CONFIG)
        self.ledger_file = self.state.root / "accounting.sqlite"
        self.token = self.state.secret("accounting-api-token")[0]
        hub_port = int(hub_url.rsplit(":", 1)[1])
        self.port = free_tcp_ports(1)[0]
        LocalRuntime(
            state_dir=str(self.state.root),
            hub_config_dir="",
            notebooks_dir=str(root),
            proxy_command="",
            public_host="127.0.0.1",
            ports=Ports(hub_port, hub_port, 1, 1, 1, 1, self.port),
        ).save(self.state.runtime_file)
        self.log = root / "accounting.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(
            os.environ,
            PARHELION_RUNTIME=str(self.state.runtime_file),
            PARHELION_STATE_DIR=str(self.state.root),
            JUPYTERHUB_API_TOKEN="service-token",
            PYTHONPATH=str(REPO_ROOT),
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "platform_tools.services.accounting"],
            cwd=REPO_ROOT,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def metrics(self, timeout: float = 60.0) -> str:
        """The /metrics page once the service answers; fails if the process exits first."""
        url = f"http://127.0.0.1:{self.port}/services/accounting/metrics"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited {self.process.returncode}:\n{self.output[-3000:]}")
            try:
                return urllib.request.urlopen(request, timeout=5).read().decode()
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"the service did not answer in {timeout:g} s:\n{self.output[-3000:]}")

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        stop_process(self.process)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def hub():
    started = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    stand_in = StandInHub({"demo": started})
    with serving_in_thread(stand_in.app()) as url:
        stand_in.url = url
        yield stand_in


@pytest.fixture
def service(tmp_path, hub):
    running = Service(tmp_path, hub.url)
    try:
        yield running
    finally:
        running.stop()


def until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def read_ledger(path: Path) -> Ledger:
    return Ledger(f"sqlite:///{path}")


def assert_meters_and_enforces(service: Service, hub: StandInHub) -> None:
    """The demo server is charged in the fresh ledger, and stopped for the budget."""
    until(lambda: "demo" in hub.stopped, 60, f"the enforcer stops demo's server:\n{service.output[-3000:]}")

    def last_event() -> str:
        # the hub sees the stop before the enforcer has stopped the clusters and written it down
        ledger = read_ledger(service.ledger_file)
        try:
            return [e.action for e in ledger.events("demo")][-1]
        finally:
            ledger.close()

    until(lambda: last_event() == "stop", 30, f"the stop is recorded:\n{service.output[-3000:]}")
    ledger = read_ledger(service.ledger_file)
    try:
        servers = [row for row in ledger.lifetimes("demo") if row.kind == "server"]
        assert len(servers) == 1 and servers[0].last_seen_at - servers[0].started_at > 86000
    finally:
        ledger.close()


def recovered_copy(service: Service) -> Path:
    copies = sorted(service.ledger_file.parent.glob("accounting.sqlite.corrupt-*"))
    copies = [path for path in copies if not path.name.endswith(("-wal", "-shm"))]
    assert len(copies) == 1, copies
    return copies[0]


def error_lines(service: Service) -> list[str]:
    return [line for line in service.output.splitlines() if " ERROR " in line]


def test_a_ledger_with_a_garbage_header_is_moved_aside_and_the_service_keeps_metering(service, hub):
    garbage = os.urandom(8192)
    service.ledger_file.write_bytes(garbage)
    service.start()
    metrics = service.metrics()
    assert "parhelion_ledger_recoveries_total 1.0" in metrics
    copy = recovered_copy(service)
    assert copy.read_bytes() == garbage  # kept as it was
    [error] = error_lines(service)
    assert str(service.ledger_file) in error and str(copy) in error
    assert "file is not a database" in error and "usage 0, events 0" in error
    assert_meters_and_enforces(service, hub)
    ledger = read_ledger(service.ledger_file)
    try:
        [event] = ledger.events("*")
        assert event.action == "ledger-recovered" and str(copy) in event.message
    finally:
        ledger.close()


def _ledger_with_history(path: Path, lifetimes: int) -> set[str]:
    """A ledger of ended lifetimes of other users (so as not to touch demo's budget); their keys."""
    ledger = Ledger(f"sqlite:///{path}")
    ledger.migrate()
    long_ago = time.time() - 400 * 86400
    keys = [f"server:user{i}::{i}" for i in range(lifetimes)]
    ledger.record_sample(
        long_ago + 60,
        [
            Observation(key, f"user{i % 40}", "server", long_ago, 0.1, description="x" * 60)
            for i, key in enumerate(keys)
        ],
    )
    ledger.record_sample(long_ago + 120, [])  # all ended
    ledger.record_event("user1", "warn", "budget-50%", "told")
    ledger.close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    return set(keys)


def _corrupt_a_usage_page(path: Path, marker: bytes) -> bytes:
    """Overwrite the table page holding ``marker`` (a row, not just an index entry)."""
    data = bytearray(path.read_bytes())
    size = 4096
    pages = [
        start
        for start in range(0, len(data), size)
        if marker in data[start : start + size] and b"x" * 60 in data[start : start + size]
    ]
    assert pages, "the row's page"
    data[pages[0] : pages[0] + size] = bytes(range(256)) * (size // 256)
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_ledger_with_a_corrupt_page_is_salvaged_into_a_fresh_one(service, hub):
    keys = _ledger_with_history(service.ledger_file, 3000)
    corrupted = _corrupt_a_usage_page(service.ledger_file, b"server:user1500::1500")
    service.start()
    assert "parhelion_ledger_recoveries_total 1.0" in service.metrics()
    copy = recovered_copy(service)
    assert copy.read_bytes() == corrupted
    [error] = error_lines(service)
    assert str(copy) in error and "events 1," in error
    assert_meters_and_enforces(service, hub)
    ledger = read_ledger(service.ledger_file)
    try:
        saved = {row.resource_key for row in ledger.lifetimes() if row.username != "demo"}
        # the rows of the one damaged page are lost, the rest of the table is not
        assert saved < keys and len(saved) >= len(keys) - 100, len(saved)
        assert "server:user1500::1500" not in saved and "server:user2999::2999" in saved
        assert f"usage {len(saved)}," in error
        assert [e.action for e in ledger.events("user1")] == ["warn"]
    finally:
        ledger.close()


def test_kill_9_mid_sample_leaves_the_ledger_intact_and_counts_nothing_twice(tmp_path):
    """Many servers make each sample a long transaction; kill -9 lands in several of them."""
    started = {f"user{i}": (datetime.now(UTC) - timedelta(seconds=i)) for i in range(400)}
    hub = StandInHub({name: when.isoformat().replace("+00:00", "Z") for name, when in started.items()})
    with serving_in_thread(hub.app()) as url:
        service = Service(tmp_path, url)
        try:
            for _ in range(4):
                service.start()
                service.metrics()
                time.sleep(2.3)
                service.kill()
            service.start()
            service.metrics()
            time.sleep(3)
            service.stop()
        finally:
            service.stop()
    assert not list(service.ledger_file.parent.glob("accounting.sqlite.corrupt-*")), service.output[-2000:]
    assert " ERROR " not in service.output
    with sqlite3.connect(service.ledger_file) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    ledger = read_ledger(service.ledger_file)
    try:
        now = time.time()
        rows = [row for row in ledger.lifetimes() if row.kind == "server"]
        by_user: dict[str, list] = {}
        for row in rows:
            by_user.setdefault(row.username, []).append(row)
        assert set(by_user) == set(started)
        for name, lifetimes in by_user.items():
            [row] = lifetimes  # one lifetime across four kills: no second one opened
            assert row.started_at == pytest.approx(started[name].timestamp(), abs=1e-3)
            assert row.started_at < row.last_seen_at <= now
            spend = ledger.spend(name, 0, now + 3600)
            assert spend == pytest.approx(row.rate_per_hour * (row.last_seen_at - row.started_at) / 3600)
    finally:
        ledger.close()


def test_a_database_server_that_is_not_up_yet_is_waited_for(tmp_path, caplog):
    """PostgreSQL starting after the service (a pod rescheduled with the database): no crash."""
    from platform_tools.services.accounting.factory import AccountingFactory, Settings

    server = PostgresServer()
    config = tmp_path / "platform.yaml"
    config.write_text(CONFIG)
    environ = {
        "PARHELION_CONFIG": str(config),
        "JUPYTERHUB_API_TOKEN": "hub-token",
        "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "PARHELION_DATABASE_URL": server.url,
    }
    starter = threading.Timer(2.0, server.start)
    starter.start()
    try:
        caplog.set_level("INFO")
        ledger = AccountingFactory(Settings.kubernetes(environ)).ledger()
        try:
            assert ledger.last_sample_at() is None  # migrated and answering
        finally:
            ledger.close()
        retries = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
        assert retries and f"127.0.0.1:{server.port}" in retries[0] and "retrying in" in retries[0]
    finally:
        starter.join()
        server.stop()


def test_a_database_server_that_never_answers_is_given_up_on_with_a_clear_error(caplog):
    """Bounded: after the wait the error is raised (and the pod restarts), each retry logged."""
    from sqlalchemy.exc import OperationalError

    from platform_tools.ledger.recovery import open_ledger

    port = free_tcp_ports(1)[0]
    url = f"postgresql+psycopg://postgres:secret@127.0.0.1:{port}/ledger"
    caplog.set_level("INFO")
    began = time.monotonic()
    with pytest.raises(OperationalError):
        open_ledger(url, wait_seconds=3)
    assert 3 <= time.monotonic() - began < 10
    said = [r.getMessage() for r in caplog.records]
    assert sum("does not answer" in line and "retrying in" in line for line in said) >= 2
    assert any("still does not answer after 3 s" in line for line in said)
    assert not any("secret" in line for line in said)  # the password is not logged
