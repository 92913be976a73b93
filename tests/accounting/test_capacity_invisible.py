"""Capacity rows (nodes, placeholders, system pods) change nothing any user sees.

Two ledgers of the same two days (tests/accounting/ledger_story.py), one recorded by this
meter (with capacity rows) and one as before (users' rows only), must give every user-facing
answer identically: spend, rates, what runs, daily spend, lifetimes, the admin rows and CSV,
a user's report, standings against budgets, the enforcer's view and the Prometheus metrics.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from platform_tools.accounting.budgets import standings
from platform_tools.accounting.metrics import Metrics
from platform_tools.accounting.report import all_users_rows, rows_csv, user_report
from platform_tools.config import load_platform
from platform_tools.ledger.store import CLUSTER_OWNER, MIGRATIONS, Ledger
from tests.accounting.ledger_story import START, build_ledger
from tests.platform import platform_config_text

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory):
    root = tmp_path_factory.mktemp("capacity")
    for name, with_capacity in (("with", True), ("without", False)):
        build_ledger(root / f"{name}.sqlite", every_minutes=60, with_capacity=with_capacity)
    (root / "platform.yaml").write_text(
        platform_config_text()
        .replace("  users: [demo]", "  users: [demo, ann, ben]")
        .replace("    members: [demo]", "    members: [demo, ann]")
    )
    opened = {name: Ledger(f"sqlite:///{root / f'{name}.sqlite'}") for name in ("with", "without")}
    yield load_platform(root / "platform.yaml"), opened
    for ledger in opened.values():
        ledger.close()


def _views(config, ledger: Ledger) -> dict:
    now = datetime.fromtimestamp(START + 47.5 * 3600, UTC)
    metrics = Metrics()
    metrics.update_spend(config, ledger, now)
    users = ["ann", "ben", "demo"]
    return {
        "spend_by_user": ledger.spend_by_user(0, now.timestamp()),
        "spend": [ledger.spend(u, 0, now.timestamp()) for u in users],
        "rates": ledger.rates_by_user(),
        "running": ledger.running_by_user(),
        "lifetimes": [(r.resource_key, r.username, r.rate_per_hour) for r in ledger.lifetimes()],
        "daily": [ledger.daily_spend(u, now.date().replace(day=20), now.date()) for u in users],
        "rows": rows_csv(all_users_rows(config, ledger, now)),
        "report": user_report(config, ledger, "ann", now),
        "standings": {
            u: (s.own.spend_usd if s.own else None) for u, s in standings(config, ledger, users, now).items()
        },
        # the metrics, less each counter's creation time (when this Metrics object was made)
        "metrics": b"\n".join(line for line in metrics.render().splitlines() if b"_created" not in line),
    }


def test_capacity_rows_change_nothing_users_see(ledgers):
    config, opened = ledgers
    with_capacity, without = _views(config, opened["with"]), _views(config, opened["without"])
    assert with_capacity == without
    assert (
        CLUSTER_OWNER not in with_capacity["rows"] and CLUSTER_OWNER.encode() not in with_capacity["metrics"]
    )
    assert set(with_capacity["spend_by_user"]) == {"ann", "ben"}
    # ... and the capacity rows are there, apart
    with opened["with"].engine.connect() as connection:
        kinds = dict(connection.execute(text("SELECT kind, count(*) FROM capacity GROUP BY kind")).all())
    assert set(kinds) == {"node", "placeholder", "system"}


def test_migration_0003_keeps_a_ledger_and_adds_capacity(tmp_path):
    """A ledger at 0002 with a user's row upgrades to 0003 with the row unchanged, and back."""
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    ledger = Ledger(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    with ledger.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(
            text(
                "INSERT INTO usage (resource_key, username, kind, description, cpu, memory_gib, storage_gib,"
                " instance_type, capacity_type, rate_per_hour, started_at, last_seen_at)"
                " VALUES ('server:ann:1', 'ann', 'server', '', 1, 4, 0, '', '', 0.5, 0, 3600)"
            )
        )
    ledger.migrate()
    assert ledger.spend("ann", 0, 7200) == pytest.approx(0.5)
    with ledger.engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM capacity")).scalar_one() == 0
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert ledger.spend("ann", 0, 7200) == pytest.approx(0.5)
    ledger.close()
