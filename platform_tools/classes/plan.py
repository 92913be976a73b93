"""What a class will cost on EKS, before it happens: `parhelion plan class`.

A day of the class is simulated minute by minute, as Karpenter would run it:

* pods: placeholders the size of a student's server from ``prewarm`` minutes before the
  session; then every student's server until the session ends and the idle culler stops it
  ``cull`` minutes later; each student's Dask burst (its scheduler on the users pool, its
  workers on the spot pool) at a time spread evenly over the session;
* nodes: each pool needs as many nodes as first-fit-decreasing packing of its pods takes
  (node allocatable = the instance's vCPU and memory less what the kubelet and system
  reserve); missing nodes are launched (billed at once, ready after ``launch`` minutes);
  surplus nodes are removed once they have been surplus for the pool's consolidation delay;
* money: node-minutes at the price catalog's on-demand or spot price (what AWS bills), and
  the charges students see, by the ledger's own rule (``pricing.cost.hourly_cost``: a
  pod pays its share of its node). Placeholders are the platform's cost, not a student's.

Days are alike and start from no nodes (everything has scaled to zero overnight).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from platform_tools.pricing.catalog import Node, PriceCatalog
from platform_tools.pricing.cost import hourly_cost

BURST_PATTERN = re.compile(r"^\s*(\d+)\s*workers?\s*[x×*]\s*(\d+)\s*min(utes?)?\s*$", re.IGNORECASE)


class PlanError(ValueError):
    pass


@dataclass(frozen=True)
class Burst:
    workers: int
    minutes: int

    @classmethod
    def parse(cls, text: str) -> Burst:
        match = BURST_PATTERN.match(text)
        if not match:
            raise PlanError(f"--burst {text!r}: write it as '8 workers x 30 min'")
        return cls(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class Pool:
    """A Karpenter pool as the plan sees it: one instance type, how fast it comes and goes."""

    node: Node
    launch_minutes: int = 2
    consolidate_minutes: int = 5
    reserved_cpu: float = 0.1
    reserved_memory_gib: float = 1.0

    @property
    def allocatable(self) -> tuple[float, float]:
        return self.node.vcpu - self.reserved_cpu, self.node.memory_gib - self.reserved_memory_gib


@dataclass(frozen=True)
class Pod:
    cpu: float
    memory_gib: float
    charged_to_student: bool = True


@dataclass(frozen=True)
class ClassPlan:
    students: int
    session_minutes: int
    days: int
    server: Pod
    users_pool: Pool
    workers_pool: Pool
    burst: Burst | None = None
    worker: Pod = Pod(1.0, 2.0)
    scheduler: Pod = Pod(1.0, 2.0)
    prewarm_minutes: int = 20
    cull_minutes: int = 30
    placeholders: bool = True


@dataclass
class PlanResult:
    plan: ClassPlan
    minutes: list[int]  # minutes from the session's start, one day
    users_nodes: list[int]
    workers_nodes: list[int]
    node_usd_per_day: dict[str, float]
    charged_usd_per_day: float
    slow_starts: int  # student servers that waited for a node at the session's start (minutes summed)
    notes: list[str] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return sum(self.node_usd_per_day.values()) * self.plan.days

    @property
    def usd_per_student_day(self) -> float:
        return self.total_usd / (self.plan.students * self.plan.days)

    @property
    def charged_usd(self) -> float:
        return self.charged_usd_per_day * self.plan.days


def nodes_needed(pods: Iterable[Pod], pool: Pool) -> int:
    """First-fit decreasing: how many of the pool's nodes these pods fill."""
    cpu_free, memory_free = pool.allocatable
    nodes: list[list[float]] = []
    for pod in sorted(pods, key=lambda p: (p.cpu, p.memory_gib), reverse=True):
        if pod.cpu > cpu_free + 1e-9 or pod.memory_gib > memory_free + 1e-9:
            raise PlanError(
                f"a pod of {pod.cpu:g} CPU and {pod.memory_gib:g} GiB does not fit a "
                f"{pool.node.instance_type} ({cpu_free:g} CPU, {memory_free:g} GiB allocatable)"
            )
        for node in nodes:
            if node[0] >= pod.cpu - 1e-9 and node[1] >= pod.memory_gib - 1e-9:
                node[0] -= pod.cpu
                node[1] -= pod.memory_gib
                break
        else:
            nodes.append([cpu_free - pod.cpu, memory_free - pod.memory_gib])
    return len(nodes)


def _burst_starts(plan: ClassPlan) -> list[int]:
    """When each student's burst begins: spread evenly over the session."""
    if plan.burst is None:
        return []
    room = max(plan.session_minutes - plan.burst.minutes, 0)
    spread = max(plan.students - 1, 1)
    return [math.floor(i * room / spread) for i in range(plan.students)]


def _pods_at(plan: ClassPlan, minute: int, bursts: list[int]) -> tuple[list[Pod], list[Pod]]:
    users: list[Pod] = []
    workers: list[Pod] = []
    if plan.placeholders and -plan.prewarm_minutes <= minute < 0:
        users += [Pod(plan.server.cpu, plan.server.memory_gib, charged_to_student=False)] * plan.students
    if 0 <= minute < plan.session_minutes + plan.cull_minutes:
        users += [plan.server] * plan.students
    for start in bursts:
        if start <= minute < start + plan.burst.minutes:
            users.append(plan.scheduler)
            workers += [plan.worker] * plan.burst.workers
    return users, workers


class _PoolClock:
    """Nodes of one pool over the day: launched when short, removed when surplus long enough."""

    def __init__(self, pool: Pool):
        self.pool = pool
        self.launched: list[int] = []  # launch minute of each node
        self.surplus_since: int | None = None
        self.node_minutes = 0

    def step(self, minute: int, needed: int) -> tuple[int, int]:
        """(nodes now, nodes not ready yet that pods wait for)."""
        if needed > len(self.launched):
            self.launched += [minute] * (needed - len(self.launched))
        if needed < len(self.launched):
            self.surplus_since = minute if self.surplus_since is None else self.surplus_since
            if minute - self.surplus_since >= self.pool.consolidate_minutes:
                self.launched = sorted(self.launched)[:needed]
                self.surplus_since = None
        else:
            self.surplus_since = None
        waiting = sum(1 for t in self.launched if minute < t + self.pool.launch_minutes)
        self.node_minutes += len(self.launched)
        return len(self.launched), waiting


def simulate(plan: ClassPlan) -> PlanResult:
    if plan.students < 1 or plan.days < 1 or plan.session_minutes < 1:
        raise PlanError("students, days and session length must be at least 1")
    bursts = _burst_starts(plan)
    users_clock, workers_clock = _PoolClock(plan.users_pool), _PoolClock(plan.workers_pool)
    start = -plan.prewarm_minutes if plan.placeholders else 0
    end = (
        plan.session_minutes
        + plan.cull_minutes
        + max(plan.users_pool.consolidate_minutes, plan.workers_pool.consolidate_minutes)
        + 1
    )
    minutes, users_nodes, workers_nodes = [], [], []
    charged = 0.0
    slow = 0
    for minute in range(start, end):
        users, workers = _pods_at(plan, minute, bursts)
        u, u_waiting = users_clock.step(minute, nodes_needed(users, plan.users_pool))
        w, _ = workers_clock.step(minute, nodes_needed(workers, plan.workers_pool))
        if minute == 0 and u_waiting:
            slow += u_waiting
        minutes.append(minute)
        users_nodes.append(u)
        workers_nodes.append(w)
        for pod in users:
            if pod.charged_to_student:
                charged += hourly_cost(pod.cpu, pod.memory_gib, plan.users_pool.node) / 60
        for pod in workers:
            charged += hourly_cost(pod.cpu, pod.memory_gib, plan.workers_pool.node) / 60
    node_usd = {
        "users": users_clock.node_minutes * plan.users_pool.node.price_per_hour / 60,
        "dask-workers": workers_clock.node_minutes * plan.workers_pool.node.price_per_hour / 60,
    }
    notes = []
    if slow:
        notes.append(
            f"{slow} users node(s) were still starting at the session's start: students wait about "
            f"{plan.users_pool.launch_minutes} min (placeholders or a longer prewarm avoid it)"
        )
    return PlanResult(plan, minutes, users_nodes, workers_nodes, node_usd, charged, slow, notes)


def pool_from_catalog(
    catalog: PriceCatalog, instance_type: str, region: str, capacity: str, consolidate_minutes: int
) -> Pool:
    return Pool(catalog.node(instance_type, region, capacity), consolidate_minutes=consolidate_minutes)


def table(result: PlanResult) -> str:
    plan = result.plan
    users, workers = plan.users_pool.node, plan.workers_pool.node
    peak_u, peak_w = max(result.users_nodes), max(result.workers_nodes)
    hours = plan.session_minutes / 60
    lines = [
        f"class plan: {plan.students} students x {hours:g} h x {plan.days} day(s)"
        + (f", bursts of {plan.burst.workers} workers x {plan.burst.minutes} min each" if plan.burst else ""),
        "",
        f"{'pool':<14}{'instance':<14}{'capacity':<11}{'$/hour':>8}{'peak nodes':>12}"
        f"{'node-hours/day':>16}{'$/day':>10}",
    ]
    for name, node, peak, clock_usd in (
        ("users", users, peak_u, result.node_usd_per_day["users"]),
        ("dask-workers", workers, peak_w, result.node_usd_per_day["dask-workers"]),
    ):
        node_hours = clock_usd / node.price_per_hour if node.price_per_hour else 0.0
        lines.append(
            f"{name:<14}{node.instance_type:<14}{node.capacity_type:<11}{node.price_per_hour:>8.4f}"
            f"{peak:>12}{node_hours:>16.2f}{clock_usd:>10.2f}"
        )
    lines += ["", "nodes over a day (minutes from the session's start: users / dask-workers)"]
    lines += _timeline(result)
    lines += [
        "",
        f"total (AWS nodes)        ${result.total_usd:,.2f}",
        f"per student-day          ${result.usd_per_student_day:,.2f}",
        f"charged to students      ${result.charged_usd:,.2f} (by the ledger's rule; the rest is"
        " placeholders and unused node capacity)",
    ]
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)


def _timeline(result: PlanResult, step: int = 15, per_line: int = 6) -> list[str]:
    """Node counts every ``step`` minutes of the day, and at its last minute."""
    cells = []
    for index, minute in enumerate(result.minutes):
        if minute % step == 0 or index == len(result.minutes) - 1:
            cells.append(f"{minute:>5}: {result.users_nodes[index]:>3} / {result.workers_nodes[index]:<3}")
    return ["  " + "   ".join(cells[i : i + per_line]).rstrip() for i in range(0, len(cells), per_line)]


def write_plot(result: PlanResult, path: Path) -> None:
    """Nodes per pool over a day of the class (PNG or SVG, by the file's suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import MaxNLocator

    if path.suffix.lower() not in (".png", ".svg"):
        raise PlanError(f"{path}: the plot is written as .png or .svg")
    figure, axes = pyplot.subplots(figsize=(9, 4.5), dpi=110)
    axes.step(result.minutes, result.users_nodes, where="post", label="users pool (on-demand)")
    axes.step(result.minutes, result.workers_nodes, where="post", label="dask-workers pool (spot)")
    axes.axvspan(0, result.plan.session_minutes, alpha=0.1, color="gray", label="session")
    axes.set_xlabel("minutes from the session's start")
    axes.set_ylabel("nodes")
    axes.set_title(  # "\$": a plain dollar sign, not matplotlib's math mode
        f"{result.plan.students} students: \\${result.total_usd:,.2f} in total, "
        f"\\${result.usd_per_student_day:,.2f} per student-day"
    )
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
