"""The class planner against cases computed by hand, and `parhelion plan class` end to end."""

from __future__ import annotations

import pytest

from platform_tools.classes.plan import Burst, ClassPlan, PlanError, Pod, Pool, nodes_needed, simulate
from platform_tools.pricing.catalog import Node
from tests.platform import run_parhelion

pytestmark = pytest.mark.unit

# Round numbers so every figure below can be checked with pencil and paper.
USERS = Node("m6i.xlarge", "us-east-1", "on-demand", 4, 16, 0.60)  # $0.01 a minute
WORKERS = Node("m6i.2xlarge", "us-east-1", "spot", 8, 32, 0.30)  # $0.005 a minute


def pool(node: Node, consolidate: int = 5, launch: int = 2) -> Pool:
    return Pool(
        node, launch_minutes=launch, consolidate_minutes=consolidate, reserved_cpu=0, reserved_memory_gib=0
    )


def plan(**changes) -> ClassPlan:
    settings = dict(
        students=1,
        session_minutes=60,
        days=1,
        server=Pod(1, 4),
        users_pool=pool(USERS),
        workers_pool=pool(WORKERS, consolidate=1),
        prewarm_minutes=20,
        cull_minutes=30,
    )
    return ClassPlan(**(settings | changes))


def test_packing():
    assert nodes_needed([Pod(1, 4)] * 4, pool(USERS)) == 1  # exactly full
    assert nodes_needed([Pod(1, 4)] * 5, pool(USERS)) == 2
    assert nodes_needed([Pod(1, 6)] * 5, pool(USERS)) == 3  # memory binds: 2 a node
    assert nodes_needed([Pod(3, 1), Pod(2, 1), Pod(1, 1), Pod(2, 1)], pool(USERS)) == 2  # 3+1, 2+2
    reserved = Pool(USERS, reserved_cpu=0.1, reserved_memory_gib=1)
    assert nodes_needed([Pod(1, 4)] * 4, reserved) == 2  # 3.9 CPU allocatable: 3 a node
    with pytest.raises(PlanError, match="does not fit a m6i.xlarge"):
        nodes_needed([Pod(8, 4)], pool(USERS))


def test_one_student_one_hour():
    """One node from the prewarm (minute -20) through the session (60) and the idle cull (30),
    then 5 minutes before consolidation removes it: 115 node-minutes at $0.01."""
    result = simulate(plan())
    assert result.node_usd_per_day == {"users": pytest.approx(1.15), "dask-workers": 0}
    assert result.total_usd == pytest.approx(1.15)
    # the student pays a quarter of the node (1 of 4 CPUs, 4 of 16 GiB) for 90 minutes
    assert result.charged_usd == pytest.approx(0.25 * 0.60 * 90 / 60)
    assert result.slow_starts == 0


def test_five_students_five_days_with_bursts():
    """5 servers of 1 CPU: 2 users nodes. Each burst: a scheduler (1 CPU, 2 GiB) on the users
    pool and 8 workers of 1 CPU on one spot node, for 30 minutes; bursts start at minutes
    0, 7, 15, 22 and 30 (spread over the 30 minutes a 60-minute session leaves)."""
    result = simulate(plan(students=5, days=5, burst=Burst.parse("8 workers x 30 min"), worker=Pod(1, 2)))
    # users: 5 servers (5 CPU) and at most 4 schedulers at once (4 CPU): 9 CPU, 3 nodes at the peak
    assert max(result.users_nodes) == 3
    # spot: bursts overlap (0-30, 7-37, 15-45, 22-52, 30-60): at most 4 at once -> 4 nodes
    assert max(result.workers_nodes) == 4
    # a day's spot node-minutes: the count of concurrent bursts, summed, plus 1 minute each
    # time a node is released (consolidation 1): 150 burst-minutes + 4 releases
    assert result.node_usd_per_day["dask-workers"] == pytest.approx((150 + 4) * 0.005)
    assert result.total_usd == pytest.approx(sum(result.node_usd_per_day.values()) * 5)
    assert result.usd_per_student_day == pytest.approx(result.total_usd / 25)


def test_without_placeholders_students_wait_for_nodes():
    result = simulate(plan(students=8, placeholders=False))
    assert result.slow_starts == 2 and result.notes
    assert result.node_usd_per_day["users"] == pytest.approx(2 * (60 + 30 + 5) * 0.01)


def test_burst_syntax():
    assert Burst.parse("8 workers x 30 min") == Burst(8, 30)
    assert Burst.parse("1 worker × 5 minutes") == Burst(1, 5)
    with pytest.raises(PlanError, match="write it as '8 workers x 30 min'"):
        Burst.parse("eight workers")


def test_the_command(tmp_path):
    plot = tmp_path / "plan.svg"
    done = run_parhelion(
        "plan",
        "class",
        "--students",
        "80",
        "--hours",
        "3",
        "--days",
        "5",
        "--profile",
        "small",
        "--burst",
        "8 workers x 30 min",
        "--plot",
        str(plot),
    )
    assert done.returncode == 0, done.stderr
    assert "class plan: 80 students x 3 h x 5 day(s)" in done.stdout
    assert "per student-day" in done.stdout and plot.read_text().startswith("<?xml")
    assert "nodes over a day" in done.stdout and "     0:  12 / 2" in done.stdout
    bad = run_parhelion("plan", "class", "--students", "8", "--hours", "1", "--profile", "huge")
    assert bad.returncode == 1 and "--profile 'huge': not in" in bad.stderr
