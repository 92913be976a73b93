"""Caps that hold (issue 17): course windows, unpriced nodes, independent stop actions,
clock steps, repeated refusals and paged events, against a real SQLite ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from platform_tools.accounting.budgets import standings, user_standing
from platform_tools.accounting.checks import check_cluster, check_spawn
from platform_tools.accounting.enforcer import Actions, Enforcer
from platform_tools.accounting.kubernetes_sources import kubernetes_observations
from platform_tools.accounting.meterclock import MeterClock
from platform_tools.accounting.report import EVENTS_PER_PAGE, user_report
from platform_tools.config import parse_platform
from platform_tools.ledger.store import REPEAT_WINDOW_SECONDS, Observation
from platform_tools.pricing.catalog import PriceCatalog
from tests.platform import platform_config_text

pytestmark = pytest.mark.unit


def course_config(**budget_extra):
    """A class with a $5 course budget for 2026-07-01..14 and a $100 class total; ``ta`` is
    also in staff, whose monthly budget is theirs (primary_group)."""
    tree = yaml.safe_load(platform_config_text())
    tree["groups"]["summer"] = {
        "members": ["stu", "ta"],
        "budget": {
            "usd": 5,
            "period": "course",
            "course": {"start": "2026-07-01", "end": "2026-07-14"},
            "group_usd": 100,
            "grace_minutes": 0,
            **budget_extra,
        },
    }
    tree["groups"]["staff"] = {"members": ["ta"], "budget": {"usd": 50, "period": "month"}}
    tree["users"]["ta"] = {"primary_group": "staff"}
    return parse_platform(yaml.safe_dump(tree))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ------------------------------------------------------------------ course windows


def test_a_course_budget_refuses_before_and_after_its_window(ledger):
    config = course_config()
    # $1000 spent before the course: once, this was allowed (no period, so no standing)
    ledger.record_sample(at("2026-06-01T00:00").timestamp(), [Observation("s1", "stu", "server", 0, 1.0)])
    ledger.record_sample(at("2026-06-30T00:00").timestamp(), [])
    before = check_spawn(config, ledger, "stu", None, at("2026-06-30T12:00"))
    assert (before.allowed, before.rule) == (False, "course-window")
    assert "course from 2026-07-01 to 2026-07-14 (UTC), which has not started yet" in before.message
    assert check_spawn(
        config, ledger, "stu", None, at("2026-07-02T09:00")
    ).allowed  # spend before is not in it
    after = check_cluster(config, ledger, "stu", at("2026-07-15T00:00"))
    assert (after.allowed, after.rule) == (False, "course-window") and "which has ended" in after.message


def test_a_class_total_caps_nobody_outside_its_window(ledger):
    """The TA's own budget is staff's monthly one; the class total must not lock them out
    once the course is over."""
    config = course_config()
    assert check_spawn(config, ledger, "ta", None, at("2026-08-01T10:00")).allowed
    standing = user_standing(config, ledger, "ta", at("2026-07-05T10:00"))
    assert [s.scope for s in standing.standings] == ["user", "group:summer"]


def test_after_the_window_running_things_stop_after_the_grace(ledger):
    config = course_config()
    stopped = []

    async def stop_servers(user):
        stopped.append(user)
        return ["server (default)"]

    async def no_clusters(user):
        return []

    enforcer = Enforcer(ledger, Actions(stop_servers, no_clusters), lambda: config)
    started = at("2026-07-14T23:00").timestamp()
    ledger.record_sample(started + 60, [Observation("s2", "stu", "server", started, 0.01)])
    asyncio.run(enforcer.run_once(at("2026-07-14T23:30")))
    assert stopped == []
    asyncio.run(enforcer.run_once(at("2026-07-15T00:00:30")))
    assert stopped == ["stu"]
    cap = [e for e in ledger.events("stu") if e.action == "cap"]
    assert len(cap) == 1 and cap[0].rule == "course-window" and "has ended" in cap[0].message


# ----------------------------------------------------------------- unpriced nodes


def node(name, instance_type, cpu="8", memory="32Gi"):
    return {
        "metadata": {
            "name": name,
            "labels": {
                "node.kubernetes.io/instance-type": instance_type,
                "topology.kubernetes.io/region": "us-east-1",
                "karpenter.sh/capacity-type": "spot",
            },
        },
        "status": {"capacity": {"cpu": cpu, "memory": memory}},
    }


def pod(name, node_name, user):
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": name,
            "creationTimestamp": "2026-11-28T00:00:00Z",
            "annotations": {"hub.jupyter.org/username": user},
            "labels": {"parhelion.io/kind": "dask-worker"},
        },
        "spec": {
            "nodeName": node_name,
            "containers": [{"resources": {"requests": {"cpu": "4", "memory": "8Gi"}}}],
        },
        "status": {"phase": "Running"},
    }


def test_a_node_type_the_catalog_lacks_is_priced_by_size_and_flagged():
    from platform_tools.contract.labels import USER

    catalog = PriceCatalog.load()
    pods = [pod("a", "known", "alice"), pod("b", "unknown", "bob")]
    for item in pods:
        item["metadata"]["annotations"] = {USER: item["metadata"]["annotations"].popitem()[1]}
    nodes = [node("known", "m6i.2xlarge"), node("unknown", "c7i.24xlarge", cpu="96", memory="192Gi")]
    observed = {o.username: o for o in kubernetes_observations(pods, nodes, [], catalog)}
    assert set(observed) == {"alice", "bob"}  # once, one unknown node froze every sample
    assert "estimated" not in observed["alice"].description
    assert observed["bob"].description.endswith("(estimated price)")
    # never cheaper than any known type of its size: 4 of 96 vCPU at the highest $/vCPU
    region = catalog.regions["us-east-1"].instances
    per_vcpu = max(p.on_demand / p.vcpu for p in region.values())
    per_gib = max(p.on_demand / p.memory_gib for p in region.values())
    node_price = max(96 * per_vcpu, 192 * per_gib)
    assert observed["bob"].rate_per_hour == pytest.approx(node_price * max(4 / 96, 8 / 192))


# ------------------------------------------------------------ stop independently


def test_clusters_stop_even_when_stopping_servers_fails(ledger):
    """The hub answering 404 for the user once meant their clusters ran on."""
    config = parse_platform(platform_config_text(**{"      usd: 25  ": "      usd: 0.01  "}))
    calls = []

    async def stop_servers(user):
        calls.append("servers")
        raise RuntimeError("HTTP 404: Not Found")

    async def stop_clusters(user):
        calls.append("clusters")
        return ["cluster 0123abcd"]

    enforcer = Enforcer(ledger, Actions(stop_servers, stop_clusters), lambda: config)
    t0 = datetime(2026, 11, 21, 12, tzinfo=UTC)
    ledger.record_sample(t0.timestamp() + 10, [Observation("w", "demo", "dask-worker", t0.timestamp(), 36)])
    for minute in (1, 7):  # the cap's notice, then after the 5 min grace
        asyncio.run(enforcer.run_once(t0 + timedelta(minutes=minute)))
    assert calls == ["servers", "clusters"]
    stop = [e for e in ledger.events("demo") if e.action == "stop"][0]
    assert stop.message.startswith("Stopped cluster 0123abcd") and "Could not stop servers" in stop.message


# -------------------------------------------------------------------- clock steps


class Clocks:
    def __init__(self, wall: float):
        self.wall, self.mono = wall, 1000.0

    def advance(self, seconds: float, step: float = 0.0):
        self.wall += seconds + step
        self.mono += seconds


def test_a_forward_step_is_not_billed_and_charging_goes_on(ledger):
    t0 = datetime(2026, 11, 21, 12, tzinfo=UTC).timestamp()
    clocks = Clocks(t0)
    clock = MeterClock(lambda: 60.0, None, 0.0, lambda: clocks.wall, lambda: clocks.mono)
    server = Observation("s", "demo", "server", t0, 138.0)  # $138/h: a day would be $3312

    def sample():
        tick = clock.tick()
        ledger.record_sample(tick.at, [server], clock.offset)
        return tick

    sample()
    clocks.advance(30, step=86400)  # 30 s of use, and the wall clock jumps a day
    assert sample().step == pytest.approx(86400)
    assert ledger.spend("demo", 0, 2e10) == pytest.approx(138 * 30 / 3600)  # $1.15 once
    # a restart keeps the clock (the offset is stored with the sample)
    clocks.advance(30)
    clock = MeterClock(lambda: 60.0, ledger.last_sample_at(), ledger.clock_offset(), lambda: clocks.wall)
    clock.monotonic = lambda: clocks.mono
    assert sample().at == pytest.approx(t0 + 60)
    clocks.advance(30, step=-86400)  # NTP puts it right: time keeps moving on the ledger
    sample()
    assert ledger.spend("demo", 0, 2e10) == pytest.approx(138 * 90 / 3600)


def test_a_stalled_meter_charges_at_most_a_few_intervals_a_sample_and_drops_nothing():
    clocks = Clocks(0.0)
    clock = MeterClock(lambda: 60.0, None, 0.0, lambda: clocks.wall, lambda: clocks.mono)
    first = clock.tick().at
    clocks.advance(3600)
    assert clock.tick().at - first == 60.0
    clocks.advance(15)
    assert clock.tick().at - first == 120.0  # the stall is charged over the next samples
    for _ in range(80):
        clocks.advance(15)
        clock.tick()
    clocks.advance(15)
    assert clock.tick().at - first == 3600 + 82 * 15  # caught up, nothing dropped
    assert clock.now() - clocks.wall == 0.0


def test_starts_after_a_step_are_moved_onto_the_ledger_clock():
    clocks = Clocks(0.0)
    clock = MeterClock(lambda: 60.0, None, 0.0, lambda: clocks.wall, lambda: clocks.mono)
    clock.tick()
    clocks.advance(30, step=86400)
    tick = clock.tick()
    assert clock.started(clocks.wall - 5, tick.at) == pytest.approx(tick.at - 5)  # started after it
    assert clock.started(-10.0, tick.at) == -10.0  # started long before it
    assert clock.started(clocks.wall + 999, tick.at) == tick.at  # never after the sample


# ---------------------------------------------------------- refusals and events


def test_repeated_refusals_are_one_row_with_a_count_and_pages_are_bounded(ledger):
    t = 1_800_000_000.0
    for i in range(500):
        ledger.record_event(
            "demo", "refuse", "budget", "No new server", at=t + i, merge_within=REPEAT_WINDOW_SECONDS
        )
    rows = ledger.events("demo")
    assert [(e.count, e.at, e.last_at) for e in rows] == [(500, t, t + 499)]
    ledger.record_event("demo", "refuse", "budget", "No new server", at=t + 499 + 601, merge_within=600)
    assert [e.count for e in ledger.events("demo")] == [500, 1]  # a new window, a new row
    assert ledger.event_counts() == {"refuse": 501}
    for i in range(EVENTS_PER_PAGE + 5):
        ledger.record_event("demo", "warn", f"w{i}", "x", at=t + 2000 + i)
    config = parse_platform(platform_config_text())
    report = user_report(config, ledger, "demo", datetime.fromtimestamp(t + 5000, UTC))
    assert (
        len(report["events"]) == EVENTS_PER_PAGE and report["events"][-1]["rule"] == f"w{EVENTS_PER_PAGE + 4}"
    )
    older = user_report(
        config, ledger, "demo", datetime.fromtimestamp(t + 5000, UTC), events_before=report["events_older"]
    )
    assert [e["count"] for e in older["events"]][:2] == [500, 1] and older["events_older"] is None


def test_standings_for_many_users_match_one_at_a_time(ledger):
    config = course_config()
    now = at("2026-07-05T10:00")
    for i, user in enumerate(["stu", "ta", "demo", "nobody"]):
        ledger.record_sample(
            now.timestamp() - 60, [Observation(f"k{i}", user, "server", now.timestamp() - 3600, i + 1.0)]
        )
    many = standings(config, ledger, ["stu", "ta", "demo", "nobody"], now)
    course_start = at("2026-07-01T00:00").timestamp()
    month_start = at("2026-07-01T00:00").timestamp()
    assert many["stu"].own.spend_usd == pytest.approx(ledger.spend("stu", course_start, now.timestamp()))
    assert many["ta"].own.spend_usd == pytest.approx(ledger.spend("ta", month_start, now.timestamp()))
    assert many["stu"].standings[1].spend_usd == pytest.approx(1.0 + 2.0 - (1 + 2) / 60)  # class total
    assert many["nobody"].standings == [] and many["demo"].own.cap_usd == 25


def test_outside_a_course_another_budget_in_force_applies(ledger):
    """Last term's course (closed, listed first) must not cap this term's student, and a
    student outside their only course falls back to the default budget when there is one."""
    tree = yaml.safe_load(platform_config_text())
    window = {"start": "2026-01-05", "end": "2026-01-16"}
    tree["groups"]["fall"] = {
        "members": ["stu"],
        "budget": {"usd": 5, "period": "course", "course": {"start": "2025-09-01", "end": "2025-09-12"}},
        "profiles": ["small"],
        "course": {"status": "closed"},
    }
    tree["groups"]["spring"] = {
        "members": ["stu", "solo"],
        "budget": {"usd": 7, "period": "course", "course": window},
    }
    tree["accounting"]["defaults_budget"] = {"usd": 1, "period": "month"}
    config = parse_platform(yaml.safe_dump(tree))
    during = standings(config, ledger, ["stu", "solo"], at("2026-01-10T10:00"))
    assert (during["stu"].own.cap_usd, during["stu"].own.outside) == (7, None)
    after = standings(config, ledger, ["solo"], at("2026-03-01T10:00"))["solo"]
    assert (after.own.cap_usd, after.own.period.key, after.policy.budget_source) == (
        1,
        "month:2026-03",
        "defaults",
    )
    assert check_spawn(config, ledger, "solo", None, at("2026-03-01T10:00")).allowed


def test_a_refusal_whose_figures_change_is_still_one_row(ledger):
    t = 1_800_000_000.0
    for i, usd in enumerate((5.01, 5.02, 5.03)):
        ledger.record_event(
            "demo", "refuse", "budget", f"${usd} of $5", spend_usd=usd, at=t + i, merge_within=600
        )
    [row] = ledger.events("demo")
    assert (row.count, row.message, row.spend_usd, row.last_at) == (3, "$5.03 of $5", 5.03, t + 2)
