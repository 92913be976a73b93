"""The ledger on SQLite (WAL) and on a real PostgreSQL: samples, spend, idempotence, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date

import pytest

from platform_tools.ledger.store import Ledger, Observation

pytestmark = pytest.mark.integration  # a real PostgreSQL server for half of the cases

T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z
HOUR = 3600.0


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    postgres = request.getfixturevalue("postgres")
    return postgres.create_database(f"t{time.monotonic_ns()}")


@pytest.fixture
def ledger(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.migrate()
    yield ledger
    ledger.close()


def server(user="ann", started=T0, rate=0.36, key=None) -> Observation:
    return Observation(key or f"server:{user}:{started}", user, "server", started, rate, cpu=1, memory_gib=2)


def test_migrations_are_repeatable(ledger):
    ledger.migrate()  # already at head: nothing to do, no error
    assert ledger.last_sample_at() is None


def test_spend_is_rate_times_time_seen(ledger):
    obs = server(rate=0.36)  # $0.36/h = $0.0001/s
    for offset in (15, 30, 45):
        ledger.record_sample(T0 + offset, [obs])
    assert ledger.spend("ann", T0 - HOUR, T0 + HOUR) == pytest.approx(0.0001 * 45)
    assert ledger.last_sample_at() == T0 + 45
    (row,) = ledger.lifetimes("ann")
    assert row.ended_at is None and row.last_seen_at == T0 + 45


def test_replaying_samples_changes_nothing(ledger):
    obs = server()
    ledger.record_sample(T0 + 60, [obs])
    ledger.record_sample(T0 + 60, [obs])  # the same sample twice
    ledger.record_sample(T0 + 30, [obs])  # an older one after a newer
    assert ledger.spend("ann", T0, T0 + HOUR) == pytest.approx(0.36 * 60 / HOUR)


def test_a_resource_not_seen_has_ended(ledger):
    ann, bob = server("ann"), server("bob", rate=0.72)
    ledger.record_sample(T0 + 10, [ann, bob])
    ledger.record_sample(T0 + 20, [bob])
    ledger.record_sample(T0 + 30, [bob])
    (row,) = ledger.lifetimes("ann")
    assert row.ended_at == T0 + 10
    assert ledger.spend("ann", T0, T0 + HOUR) == pytest.approx(0.36 * 10 / HOUR)
    assert ledger.spend("bob", T0, T0 + HOUR) == pytest.approx(0.72 * 30 / HOUR)
    assert [r.resource_key for r in ledger.lifetimes(running_only=True)] == [bob.resource_key]
    ledger.record_sample(T0 + 40, [])
    assert ledger.lifetimes(running_only=True) == []


def test_spend_counts_only_the_window(ledger):
    obs = server(started=T0, rate=3.6)  # $0.001/s
    ledger.record_sample(T0 + 2 * HOUR, [obs])
    assert ledger.spend("ann", T0 + HOUR, T0 + 90 * 60) == pytest.approx(1.8)
    assert ledger.spend("ann", T0 - HOUR, T0) == 0.0
    assert ledger.spend("nobody", T0, T0 + HOUR) == 0.0


def test_spend_by_user_and_per_day(ledger):
    midnight = 1_780_012_800.0  # 2026-05-29T00:00:00Z
    ledger.record_sample(
        midnight + HOUR,
        [server("ann", started=midnight - HOUR, rate=1.0), server("bob", started=midnight, rate=2.0)],
    )
    assert ledger.spend_by_user(midnight - 86400, midnight + 86400) == pytest.approx({"ann": 2.0, "bob": 2.0})
    assert ledger.spend_by_user(midnight, midnight + 86400, users=["bob"]) == pytest.approx({"bob": 2.0})
    days = ledger.daily_spend("ann", date(2026, 5, 28), date(2026, 5, 29))
    assert days == [(date(2026, 5, 28), pytest.approx(1.0)), (date(2026, 5, 29), pytest.approx(1.0))]


def test_events_and_notices(ledger):
    ledger.record_event("ann", "warn", "budget", "50% of $10 used", spend_usd=5.0, cap_usd=10.0, at=T0)
    ledger.record_event("ann", "stop", "budget", "server stopped", at=T0 + 1)
    assert [(e.action, e.spend_usd) for e in ledger.events("ann")] == [("warn", 5.0), ("stop", None)]
    assert ledger.events("bob") == []
    assert ledger.claim_notice("ann", "month:2026-05", 50) is True
    assert ledger.claim_notice("ann", "month:2026-05", 50) is False
    assert ledger.claim_notice("ann", "month:2026-06", 50) is True


WRITER = """
import sys
from platform_tools.ledger.store import Ledger, Observation
url, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ledger = Ledger(url)
ledger.migrate()
T0 = 1_780_000_000.0
for step in range(first, last + 1):
    at = T0 + 15 * step
    running = [Observation(f"worker:{n}", f"user{n % 3}", "dask-worker", T0, 0.1 * (n + 1))
               for n in range(20) if step <= 200 + 10 * n]
    ledger.record_sample(at, running)
    print(step, flush=True)
"""


def expected_spend(last_step: int) -> dict[str, float]:
    totals: dict[str, float] = {}
    for n in range(20):
        seen = min(last_step, 200 + 10 * n) * 15
        totals[f"user{n % 3}"] = totals.get(f"user{n % 3}", 0.0) + 0.1 * (n + 1) * seen / HOUR
    return totals


def test_kill_9_mid_run_loses_and_doubles_nothing(ledger_url):
    """SIGKILL a writer at random moments; after each restart the totals are exact."""
    ledger = Ledger(ledger_url)
    ledger.migrate()
    step, last = 1, 400
    kills = 0
    while step <= last:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, ledger_url, str(step), str(last)],
            stdout=subprocess.PIPE,
            text=True,
        )
        target = 25 + 37 * kills  # lines to wait for before killing this writer
        for _ in range(target):
            if writer.stdout.readline() == "":
                break
        if writer.poll() is None:
            os.kill(writer.pid, signal.SIGKILL)
            kills += 1
        writer.wait(30)
        writer.stdout.close()
        committed = ledger.last_sample_at()
        done = round((committed - 1_780_000_000.0) / 15)
        totals = ledger.spend_by_user(0, 2e9)
        assert totals == pytest.approx(expected_spend(done), rel=1e-9), f"after a kill at step {done}"
        step = done + 1
    assert kills >= 3
    assert ledger.spend_by_user(0, 2e9) == pytest.approx(expected_spend(last), rel=1e-9)
    ledger.close()


def test_sqlite_runs_in_wal_mode(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'wal.sqlite'}")
    ledger.migrate()
    with ledger.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    ledger.close()


def test_a_lifetime_known_by_an_older_key_goes_on_under_its_new_one(tmp_path):
    """Local homes got one key per life of the folder (issue 17); a ledger written before
    must not charge a home's past twice after the upgrade."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.migrate()
    try:
        ledger.record_sample(1000.0, [Observation("storage:ann:home", "ann", "storage", 0.0, 3.6)])
        renewed = Observation(
            "storage:ann:home:42:0", "ann", "storage", 0.0, 3.6, previous_key="storage:ann:home"
        )
        ledger.record_sample(2000.0, [renewed])
        ledger.record_sample(3000.0, [renewed])
        assert [(row.resource_key, row.ended_at) for row in ledger.lifetimes("ann")] == [
            ("storage:ann:home:42:0", None)
        ]
        assert ledger.spend("ann", 0, 5000) == pytest.approx(3.0)  # 3000 s at $3.6/h, once
    finally:
        ledger.close()


def test_capacity_rows_apart_and_read_per_day_read_only(ledger, ledger_url):
    """Capacity rows (a node, a system pod) go to their own table with the same lifetime rules,
    count in no user's spend, and are summed per day through a ledger that cannot write."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from platform_tools.ledger.daily import ledger_days, open_read_only
    from platform_tools.ledger.store import CLUSTER_OWNER

    node = Observation("node:n1:u1", CLUSTER_OWNER, "node", T0, 0.192, capacity=True, node="n1")
    system = Observation(
        "system:kube-system/coredns:u2", CLUSTER_OWNER, "system", T0, 0.01, capacity=True, node="n1"
    )
    ledger.record_sample(T0 + HOUR, [server(), node, system])
    ledger.record_sample(T0 + 2 * HOUR, [server(), node])  # the system pod ended at T0 + 1 h
    assert ledger.spend_by_user(T0, T0 + 3 * HOUR) == {"ann": pytest.approx(0.72)}
    assert ledger.rates_by_user() == {"ann": pytest.approx(0.36)}

    reader = open_read_only(ledger_url)
    (day,) = ledger_days(reader, date(2026, 5, 28), date(2026, 5, 28))
    # T0 is 20:26:40, so both hours are within the day
    assert day.node_hours == pytest.approx(2.0)
    assert day.capacity_usd == {"node": pytest.approx(0.384), "system": pytest.approx(0.01)}
    assert day.users_compute == {"ann": pytest.approx(0.72)}
    with pytest.raises(DBAPIError), reader.engine.begin() as connection:
        connection.execute(text("DELETE FROM capacity"))
    reader.close()
    assert len(ledger_days(ledger, date(2026, 5, 28), date(2026, 5, 28))[0].capacity_usd) == 2
