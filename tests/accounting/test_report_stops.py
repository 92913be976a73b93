"""The user report says when a cap stops the user's work, as the enforcer decides it.

JupyterLab's spend item counts down the grace period (platform_tools/lab); it must show the
time the enforcer will act on, not one of its own: the cap notice's claim plus the grace.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from platform_tools.accounting.enforcer import Actions, Enforcer
from platform_tools.accounting.report import user_report
from platform_tools.config import parse_platform
from platform_tools.ledger.store import Observation
from tests.platform import platform_config_text

pytestmark = pytest.mark.unit
T0 = datetime(2026, 7, 6, 12, 0, tzinfo=UTC)


def config_with(on_hard_cap: str = "refuse-new-and-stop", group_usd: float | None = None):
    tree = yaml.safe_load(platform_config_text())
    budget = tree["groups"]["researchers"]["budget"]
    budget.update({"usd": 1, "grace_minutes": 5, "on_hard_cap": on_hard_cap})
    if group_usd is not None:
        budget["group_usd"] = group_usd
    return parse_platform(yaml.safe_dump(tree))


def enforcer_for(ledger, config, stopped):
    async def stop_servers(user):
        stopped.append(user)
        return ["server (default)"]

    async def no_clusters(user):
        return []

    return Enforcer(ledger, Actions(stop_servers, no_clusters), lambda: config)


def a_server_for_an_hour(ledger, rate: float):
    """$``rate`` spent by T0: a server that started an hour before at ``rate`` $/hour."""
    started = (T0 - timedelta(hours=1)).timestamp()
    ledger.record_sample(T0.timestamp(), [Observation("s1", "demo", "server", started, rate)])
    return Observation("s1", "demo", "server", started, rate)


def test_stops_at_is_the_cap_notice_plus_the_grace_and_the_enforcer_stops_then(ledger):
    config = config_with(group_usd=1.5)
    stopped: list[str] = []
    enforcer = enforcer_for(ledger, config, stopped)
    server = a_server_for_an_hour(ledger, 0.6)
    asyncio.run(enforcer.run_once(T0))
    under = user_report(config, ledger, "demo", T0)
    assert under["budget"]["warnings_reached"] == [50] and under["budget"]["stops_at"] is None
    assert [g["stops_at"] for g in under["group_totals"]] == [None]

    capped_at = T0 + timedelta(minutes=1)
    # a big cluster for a minute: $1.61 in all, the user's $1 and the group's $1.50 both crossed
    cluster = Observation("c1", "demo", "dask-worker", T0.timestamp(), 60.0)
    ledger.record_sample(capped_at.timestamp(), [server, cluster])
    before_the_pass = user_report(config, ledger, "demo", capped_at)
    assert before_the_pass["budget"]["capped"] and before_the_pass["budget"]["stops_at"] is None
    asyncio.run(enforcer.run_once(capped_at))
    report = user_report(config, ledger, "demo", capped_at + timedelta(seconds=30))
    expected = (capped_at + timedelta(minutes=5)).isoformat()
    assert report["budget"]["stops_at"] == expected
    assert [(g["group"], g["capped"], g["stops_at"]) for g in report["group_totals"]] == [
        ("researchers", True, expected)
    ]
    # the figures the spend page shows are unchanged by it
    assert report["budget"]["spent_usd"] == pytest.approx(1.61) and report["budget"]["left_usd"] == 0.0

    asyncio.run(enforcer.run_once(capped_at + timedelta(minutes=5) - timedelta(seconds=1)))
    assert stopped == []
    asyncio.run(enforcer.run_once(capped_at + timedelta(minutes=5)))
    assert set(stopped) == {"demo"}  # at the time the report gave (once per capped scope)


def test_a_cap_that_only_refuses_new_work_stops_nothing_and_has_no_time(ledger):
    config = config_with(on_hard_cap="refuse-new")
    enforcer = enforcer_for(ledger, config, [])
    a_server_for_an_hour(ledger, 2.0)
    asyncio.run(enforcer.run_once(T0))
    report = user_report(config, ledger, "demo", T0 + timedelta(minutes=1))
    assert report["budget"]["capped"] and report["budget"]["stops_at"] is None
