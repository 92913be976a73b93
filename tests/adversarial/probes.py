"""What the adversarial tests use to act as a user and to watch the platform from outside.

Users act as they can on a real platform: they log in with the shared password, make a hub
API token of their own (as the hub's token page does) and use it with requests and the
dask-gateway client. The tests watch with what an operator has: the processes, the ledger
file (read-only SQLite) and the services' logs. Every wait polls until a deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import requests

from platform_tools.clients.hubclient import HubUser
from platform_tools.contract.services import GATEWAY_PREFIX
from tests.platform import LocalPlatform, processes_of

#: Minutes between a hard cap and the stop, for demo and mallory (the researchers): also the
#: longest a fault may leave what runs unmetered.
GRACE_MINUTES = 0.25
#: The burst user's budget: crossed a few seconds after 20 schedulers run ($0.048/h each).
BURST_BUDGET_USD = 0.002
#: The ghost's budget: crossed about 7.5 s after its one scheduler starts.
GHOST_BUDGET_USD = 0.0001

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.25) -> T:
    """``check()``'s first true value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(interval)


def secret(platform: LocalPlatform, name: str) -> str:
    return (platform.state / "secrets" / name).read_text().strip()


def user_password(platform: LocalPlatform, username: str) -> str:
    return platform.password("admin" if username == "admin" else "user")


async def _new_token(platform: LocalPlatform, username: str) -> str:
    async with HubUser(platform.url, username, user_password(platform, username)) as user:
        await user.login()
        xsrf = user._cookie("_xsrf", "/hub") or ""
        async with user.session.post(
            f"{platform.url}/hub/api/users/{username}/tokens",
            json={"note": "mine"},
            headers={"X-XSRFToken": xsrf},
        ) as answer:
            body = await answer.json()
            assert answer.status == 201, body
            return body["token"]


def user_token(platform: LocalPlatform, username: str) -> str:
    """A hub API token of ``username``'s own, made after logging in as a person does."""
    return asyncio.run(_new_token(platform, username))


def call(method: str, url: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"token {token}"
    return requests.request(method, url, headers=headers, timeout=30, allow_redirects=False, **kwargs)


def admin_api(platform: LocalPlatform, method: str, path: str) -> requests.Response:
    """The hub's REST API as Parhelion's admin service (what `parhelion class` uses)."""
    return call(method, f"{platform.url}/hub/api/{path}", secret(platform, "admin-api-token"))


# ----------------------------------------------------------------------- Dask


def gateway(platform: LocalPlatform, token: str):
    """An asynchronous dask-gateway client of the token's owner, through the hub's proxy."""
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    ports = platform.runtime["ports"]
    return Gateway(
        address=f"{platform.url}{GATEWAY_PREFIX}",
        proxy_address=f"gateway://127.0.0.1:{ports['gateway_scheduler']}",
        auth=JupyterHubAuth(api_token=token),
        asynchronous=True,
    )


def usage(platform: LocalPlatform) -> list[dict]:
    """Every running cluster with its scheduler and workers, as the gateway tells the meter."""
    ports = platform.runtime["ports"]
    answer = call(
        "GET",
        f"http://127.0.0.1:{ports['gateway']}{GATEWAY_PREFIX}/api/v1/parhelion/usage",
        secret(platform, "accounting-api-token"),
    )
    answer.raise_for_status()
    return answer.json()["clusters"]


@dataclass(frozen=True)
class DaskProcess:
    pid: int
    cluster: str
    kind: str  # scheduler | worker


def dask_processes(platform: LocalPlatform) -> list[DaskProcess]:
    """The Dask schedulers and workers alive on the machine: the truth the gateway's records
    and the ledger are compared with."""
    found = []
    for proc in processes_of(platform.state):
        try:
            line = proc.cmdline()
            environ = proc.environ()
        except psutil.Error:
            continue
        kinds = [kind for kind in ("scheduler", "worker") if kind in line[1:3]]
        cluster = environ.get("DASK_GATEWAY_CLUSTER_NAME")
        if kinds and cluster and proc.status() != psutil.STATUS_ZOMBIE:
            found.append(DaskProcess(proc.pid, cluster, kinds[0]))
    return found


# --------------------------------------------------------------------- ledger


class LedgerFile:
    """The ledger, read as an operator would with sqlite3 (read-only: never a writer)."""

    def __init__(self, path: Path):
        self.path = path

    def _rows(self, query: str, *args: Any) -> list[tuple]:
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return connection.execute(query, args).fetchall()
        finally:
            connection.close()

    def last_sample_at(self) -> float | None:
        rows = self._rows("SELECT value FROM meter_state WHERE key = 'last_sample_at'")
        return float(rows[0][0]) if rows else None

    def lifetimes(self, username: str) -> list[dict]:
        columns = ("resource_key", "kind", "rate_per_hour", "started_at", "last_seen_at", "ended_at")
        rows = self._rows(
            f"SELECT {', '.join(columns)} FROM usage WHERE username = ? ORDER BY started_at", username
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def spend_at(self, username: str, moment: float, kinds: tuple[str, ...] | None = None) -> float:
        """Dollars charged to ``username`` for use up to ``moment``, as the ledger says."""
        total = 0.0
        for row in self.lifetimes(username):
            if kinds is not None and row["kind"] not in kinds:
                continue
            seconds = min(moment, row["last_seen_at"]) - row["started_at"]
            total += max(0.0, seconds) * row["rate_per_hour"] / 3600
        return total

    def crossing(self, username: str, cap: float, kinds: tuple[str, ...] | None = None) -> float | None:
        """The moment the ledger's spend reached ``cap`` (bisection: spend grows with time)."""
        rows = self.lifetimes(username)
        if not rows:
            return None
        low, high = min(r["started_at"] for r in rows), max(r["last_seen_at"] for r in rows)
        if self.spend_at(username, high, kinds) < cap:
            return None
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if self.spend_at(username, middle, kinds) < cap else (low, middle)
        return high


def ledger(platform: LocalPlatform) -> LedgerFile:
    return LedgerFile(platform.ledger_dir / "accounting.sqlite")


def sampled_after(platform: LocalPlatform, moment: float) -> float | None:
    """The ledger's last sample time if it is later than ``moment``."""
    try:
        last = ledger(platform).last_sample_at()
    except sqlite3.Error:
        return None
    return last if last is not None and last > moment else None


# ------------------------------------------------------------------ processes


def accounting_pid(platform: LocalPlatform) -> int | None:
    for proc in processes_of(platform.state):
        try:
            named = "platform_tools.services.accounting" in " ".join(proc.cmdline())
            if named and proc.status() != psutil.STATUS_ZOMBIE:
                return proc.pid
        except psutil.Error:
            continue
    return None


def kill(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    os.kill(pid, sig)


class LogWatch:
    """What the platform's logs say from now on (every log in the state dir's logs/)."""

    def __init__(self, platform: LocalPlatform):
        self.folder = platform.state / "logs"
        self.offsets = {path: path.stat().st_size for path in self.folder.glob("*.log")}

    def text(self) -> str:
        parts = []
        for path in sorted(self.folder.glob("*.log")):
            with path.open("rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                parts.append(handle.read().decode(errors="replace"))
        return "\n".join(parts)
