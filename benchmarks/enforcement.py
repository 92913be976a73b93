"""Benchmark enforcement at class scale: one enforcer pass, and the checks the hub waits on.

For 100, 500 and 2,000 users (classes of up to 300 students with a course budget and a
class total, and a research group), a ledger is filled with synthetic usage (20 past
lifetimes a user, a running server for half of them, a Dask cluster for a tenth) in SQLite
and in a real PostgreSQL. The real accounting service (its factory, web app and enforcer,
in this process) then answers checks over HTTP while enforcer passes run back to back.

Targets (issue 17): a pass under 1 s and a check's p95 under 50 ms at 2,000 users.

    .venv/bin/python benchmarks/enforcement.py [--users 100 500 2000] [--checks 400]

Also run by ``benchmarks/accounting.py --enforcement``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import insert  # noqa: E402
from tornado.httpclient import AsyncHTTPClient  # noqa: E402

from platform_tools.contract.services import AccountingPath  # noqa: E402
from platform_tools.contract.tokens import authorization  # noqa: E402
from platform_tools.ledger.schema import Usage  # noqa: E402
from platform_tools.ledger.store import Observation  # noqa: E402
from platform_tools.services.accounting.app import make_app  # noqa: E402
from platform_tools.services.accounting.factory import AccountingFactory, Settings  # noqa: E402
from platform_tools.services.processes import free_tcp_ports  # noqa: E402
from tests.platform import PostgresServer  # noqa: E402

TOKEN = "benchmark-internal-token"
CLASS_SIZE = 300


def usernames(count: int) -> list[str]:
    return [f"u{i:05d}" for i in range(count)]


def platform_yaml(users: list[str], today: datetime) -> str:
    """Researchers (a tenth, monthly $25) and classes of up to 300 (course $5, class total)."""
    tree = yaml.safe_load((REPO / "hub_config" / "platform.local.yaml").read_text())
    researchers = users[: max(1, len(users) // 10)]
    students = users[len(researchers) :]
    tree["groups"]["researchers"]["members"] = ["demo", *researchers]
    window = {
        "start": (today - timedelta(days=5)).date().isoformat(),
        "end": (today + timedelta(days=5)).date().isoformat(),
    }
    for index in range(0, len(students), CLASS_SIZE):
        members = students[index : index + CLASS_SIZE]
        tree["groups"][f"class{index // CLASS_SIZE}"] = {
            "members": members,
            "budget": {"usd": 5, "period": "course", "course": dict(window), "group_usd": 5 * len(members)},
        }
    return yaml.safe_dump(tree)


def fill_ledger(ledger, users: list[str], now: float) -> list[Observation]:
    """20 ended lifetimes a user over 20 days; returns what runs now (the meter's sources)."""
    rng = random.Random(17)
    rows = []
    for user in users:
        for day in range(20):
            start = now - (day + 1) * 86400 + rng.uniform(0, 3600)
            end = start + rng.uniform(600, 7200)
            rows.append(
                dict(
                    resource_key=f"server:{user}::{start}",
                    username=user,
                    kind="server",
                    description="server (default)",
                    cpu=0.5,
                    memory_gib=1,
                    storage_gib=0,
                    instance_type="m6i.xlarge",
                    capacity_type="on-demand",
                    rate_per_hour=0.024,
                    started_at=start,
                    last_seen_at=end,
                    ended_at=end,
                )
            )
    with ledger.engine.begin() as connection:
        for chunk in range(0, len(rows), 5000):
            connection.execute(insert(Usage), rows[chunk : chunk + 5000])
    running = []
    for i, user in enumerate(users):
        if i % 2 == 0:
            running.append(Observation(f"server:{user}::now", user, "server", now - 1800, 0.024))
        if i % 10 == 0:
            running += [
                Observation(f"pod:{user}-w{w}", user, "dask-worker", now - 600, 0.048) for w in range(4)
            ]
    ledger.record_sample(now - 15, running)
    return running


class Replay:
    """The meter's sources replaying what runs (the benchmark is about the ledger and checks)."""

    def __init__(self, running: list[Observation]):
        self.running = running

    async def observe(self) -> list[Observation]:
        return self.running


async def measure(url: str, count: int, checks: int, root: Path) -> dict:
    users = usernames(count)
    today = datetime.now(UTC)
    config = root / "platform.yaml"
    config.write_text(platform_yaml(users, today))
    settings = Settings.kubernetes(
        {
            "PARHELION_CONFIG": str(config),
            "JUPYTERHUB_API_TOKEN": TOKEN,
            "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
            "PARHELION_DATABASE_URL": url,
        }
    )
    sources = Replay([])
    accounting = AccountingFactory(settings).create(sources)
    ledger = accounting.ledger
    sources.running = fill_ledger(ledger, users, today.timestamp())
    port = free_tcp_ports(1)[0]
    server = make_app(accounting).listen(port, address="127.0.0.1")
    client = AsyncHTTPClient(max_clients=8)
    check_url = f"http://127.0.0.1:{port}{accounting.prefix}{AccountingPath.CHECK_SPAWN}?user="
    rng = random.Random(1)

    async def checks_p95(n: int) -> float:
        times: list[float] = []

        async def worker():
            while len(times) < n:
                began = time.perf_counter()
                await client.fetch(check_url + rng.choice(users), headers=authorization(TOKEN))
                times.append(time.perf_counter() - began)

        await asyncio.gather(*(worker() for _ in range(4)))
        times.sort()
        return 1000 * times[int(0.95 * (len(times) - 1))]

    try:
        await accounting.sample()
        passes = []
        for _ in range(3):
            began = time.perf_counter()
            await accounting.enforce()
            passes.append(time.perf_counter() - began)
        idle = await checks_p95(checks)
        stop = asyncio.Event()
        during: list[float] = []

        async def passes_meanwhile():
            while not stop.is_set():
                began = time.perf_counter()
                await accounting.enforce()
                await accounting.sample()
                during.append(time.perf_counter() - began)

        background = asyncio.create_task(passes_meanwhile())
        busy = await checks_p95(checks)
        stop.set()
        await background
        return {
            "pass_s": statistics.median(passes),
            "pass_and_sample_s": statistics.median(during) if during else float("nan"),
            "check_p95_ms": idle,
            "check_p95_busy_ms": busy,
            "rows": len(users) * 20 + len(sources.running),
        }
    finally:
        server.stop()
        ledger.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--checks", type=int, default=400)
    args = parser.parse_args()
    print(enforcement_table(args.users, args.checks))
    return 0


def enforcement_table(sizes: list[int], checks: int) -> str:
    lines = [
        "| database | users | ledger rows | enforcer pass | pass + sample (busy) | check p95 "
        "| check p95 during passes |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="parhelion-bench-") as tmp:
        postgres = PostgresServer()
        postgres.start()
        try:
            for size in sizes:
                for name in ("SQLite", "PostgreSQL"):
                    root = Path(tmp) / f"{name}-{size}"
                    root.mkdir()
                    url = (
                        f"sqlite:///{root / 'ledger.sqlite'}"
                        if name == "SQLite"
                        else postgres.create_database(f"bench{size}")
                    )
                    result = asyncio.run(measure(url, size, checks, root))
                    lines.append(
                        f"| {name} | {size} | {result['rows']} | {result['pass_s']:.3f} s | "
                        f"{result['pass_and_sample_s']:.3f} s | {result['check_p95_ms']:.1f} ms | "
                        f"{result['check_p95_busy_ms']:.1f} ms |"
                    )
                    print(lines[-1], file=sys.stderr, flush=True)
        finally:
            postgres.stop()
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
