"""`parhelion loadtest`: a class's worth of students against a real hub, before the event.

Each simulated student does what a person does, through the same doors: logs in through
the form, starts a server (choosing the class's profile on the form), opens JupyterLab,
runs a notebook in a kernel (with a Dask cluster of their own if asked), idles, and stops.
Students arrive spread over the ramp. The report gives time-to-ready (login to JupyterLab
open) percentiles, every failure with its step and reason, the hub's CPU and memory while
it ran (from its process on this machine, or from /hub/metrics of any hub, with a token
that may read them), and what the run cost.

Against the local platform, the students are a temporary group added to the live
platform.yaml (and removed afterwards, also on failure); elsewhere they must exist already
(a class made from a roster of loadtest users) and share a password. Locally they log in
through whichever authenticator platform.yaml chooses that a script can use: the shared
password, or first-use passwords, where each student's first login sets their password (one
derived from a secret of the state directory and their name, so that a second run with the
same names logs in again).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from platform_tools.classes.hubload import HubMonitor
from platform_tools.clients.hubclient import HubUser
from platform_tools.config import PlatformConfig
from platform_tools.config.edit import PlatformChange, change_file
from platform_tools.ledger.store import Ledger
from platform_tools.local.statedir import StateDir

DASK_CELL = """\
from dask_gateway import Gateway
with Gateway().new_cluster() as cluster:
    cluster.scale({workers})
    client = cluster.get_client()
    client.wait_for_workers({workers}, timeout=300)
    total = sum(client.gather(client.map(lambda x: x * x, range(1000))))
    assert total == 332833500, total
    client.close()
"""


@dataclass(frozen=True)
class LoadtestSpec:
    url: str
    password: str
    users: int
    ramp_seconds: float = 60.0
    profile: str | None = None
    notebook: Path | None = None
    dask_workers: int = 0
    idle_seconds: float = 30.0
    prefix: str = "loadtest"
    spawn_timeout: float = 600.0
    password_key: str | None = None  # set: each student's own password, derived from it

    def password_for(self, username: str) -> str:
        if self.password_key is None:
            return self.password
        return hmac.new(self.password_key.encode(), username.encode(), hashlib.sha256).hexdigest()[:32]

    @property
    def usernames(self) -> list[str]:
        width = max(3, len(str(self.users)))
        return [f"{self.prefix}{i:0{width}d}" for i in range(1, self.users + 1)]


@dataclass
class Outcome:
    username: str
    ready_seconds: float | None = None
    server_seconds: float = 0.0  # how long the student's server ran (for the cost estimate)
    steps: dict[str, float] = field(default_factory=dict)
    failure: tuple[str, str] | None = None  # (step, reason)


async def one_student(spec: LoadtestSpec, username: str, delay: float, notebook) -> Outcome:
    await asyncio.sleep(delay)
    outcome = Outcome(username)
    step = "login"
    started = time.monotonic()
    spawned_at = None
    async with HubUser(spec.url, username, spec.password_for(username), timeout=120) as user:
        try:
            await user.login()
            step = "spawn"
            await user.start_server(timeout=spec.spawn_timeout, profile=spec.profile)
            spawned_at = time.monotonic()
            step = "lab"
            await user.open_lab()
            outcome.ready_seconds = time.monotonic() - started
            if notebook is not None:
                step = "notebook"
                await user.run_notebook(copy.deepcopy(notebook))
            if spec.dask_workers:
                step = "dask"
                kernel = await user.start_kernel()
                try:
                    await kernel.execute(DASK_CELL.format(workers=spec.dask_workers), timeout=600)
                finally:
                    await kernel.shutdown()
            step = "idle"
            await asyncio.sleep(spec.idle_seconds)
            step = "stop"
            await user.stop_server()
        except Exception as error:  # every failure is reported, with its step; the run goes on
            outcome.failure = (step, f"{type(error).__name__}: {error}".splitlines()[0][:300])
            if spawned_at is not None and step != "stop":
                try:
                    await user.stop_server()
                except Exception:  # already reported above; the hub may be the problem
                    pass
        finally:
            if spawned_at is not None:
                outcome.server_seconds = time.monotonic() - spawned_at
            outcome.steps = dict(user.timings.steps)
    return outcome


@dataclass
class LoadtestReport:
    spec: LoadtestSpec
    outcomes: list[Outcome]
    wall_seconds: float
    hub_cpu: list[float] = field(default_factory=list)
    hub_rss_mib: list[float] = field(default_factory=list)
    hub_source: str | None = None  # where the hub's load was read
    hub_problem: str | None = None  # why it was not (or not throughout)
    metered_usd: float | None = None  # from the ledger, when the accounting service metered it
    estimated_usd: float | None = None  # server time x the profile's price

    @property
    def ready(self) -> list[float]:
        return sorted(o.ready_seconds for o in self.outcomes if o.ready_seconds is not None)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failure]

    def percentile(self, q: float) -> float | None:
        values = self.ready
        if not values:
            return None
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]

    def as_json(self) -> dict:
        """The measurements, for --json (the passwords left out)."""
        spec = {
            k: str(v) if isinstance(v, Path) else v
            for k, v in asdict(self.spec).items()
            if k not in ("password", "password_key")
        }
        return {
            "spec": spec,
            "outcomes": [asdict(o) for o in self.outcomes],
            "wall_seconds": self.wall_seconds,
            "p50": self.percentile(50),
            "p95": self.percentile(95),
            "hub_cpu": self.hub_cpu,
            "hub_rss_mib": self.hub_rss_mib,
            "hub_source": self.hub_source,
            "hub_problem": self.hub_problem,
            "metered_usd": self.metered_usd,
            "estimated_usd": self.estimated_usd,
        }

    def text(self) -> str:
        spec = self.spec
        ok = len(self.outcomes) - len(self.failures)
        lines = [
            f"loadtest: {spec.users} students over {spec.ramp_seconds:g} s against {spec.url}"
            + (f", profile {spec.profile}" if spec.profile else "")
            + (f", notebook {spec.notebook.name}" if spec.notebook else "")
            + (f", {spec.dask_workers} Dask workers each" if spec.dask_workers else ""),
            f"succeeded           {ok} of {len(self.outcomes)} in {self.wall_seconds:.0f} s",
        ]
        if self.ready:
            lines.append(
                f"time to ready       p50 {self.percentile(50):.1f} s,"
                f" p95 {self.percentile(95):.1f} s, max {self.ready[-1]:.1f} s"
            )
        steps = sorted({name for o in self.outcomes for name in o.steps})
        for name in steps:
            values = [o.steps[name] for o in self.outcomes if name in o.steps]
            lines.append(f"  {name:<18}median {statistics.median(values):.1f} s, max {max(values):.1f} s")
        if self.hub_cpu:
            lines.append(
                f"hub load            CPU mean {statistics.mean(self.hub_cpu):.0f}%"
                f" max {max(self.hub_cpu):.0f}% (100% = one core),"
                f" memory max {max(self.hub_rss_mib):.0f} MiB ({self.hub_source})"
            )
        if self.hub_problem:
            lines.append(
                f"hub load            {'stopped' if self.hub_cpu else 'not'} measured: {self.hub_problem}"
            )
        elif not self.hub_cpu:
            lines.append(
                "hub load            not measured (no hub process here; give a token that may read"
                " /hub/metrics)"
            )
        if self.metered_usd is not None:
            lines.append(f"cost (metered)      ${self.metered_usd:.4f} by the ledger")
        if self.estimated_usd is not None:
            lines.append(
                f"cost (estimated)    ${self.estimated_usd:.4f} (server time x the profile's $/hour)"
            )
        reasons = Counter(o.failure for o in self.failures)
        for (step, reason), count in reasons.most_common():
            lines.append(f"FAILED at {step} x{count}: {reason}")
        return "\n".join(lines)


async def run_loadtest(spec: LoadtestSpec, monitor: HubMonitor | None = None) -> LoadtestReport:
    """Every student of ``spec`` through the hub, the hub's load watched by ``monitor``."""
    notebook = nbformat.read(spec.notebook, as_version=4) if spec.notebook else None
    delays = [spec.ramp_seconds * i / max(spec.users - 1, 1) for i in range(spec.users)]
    started = time.monotonic()
    students = [
        one_student(spec, name, delay, notebook) for name, delay in zip(spec.usernames, delays, strict=True)
    ]
    async with monitor or contextlib.nullcontext():
        outcomes = await asyncio.gather(*students)
    report = LoadtestReport(spec, list(outcomes), time.monotonic() - started)
    if monitor is not None:
        report.hub_cpu, report.hub_rss_mib = monitor.cpu, monitor.rss_mib
        report.hub_source, report.hub_problem = monitor.source, monitor.problem
    return report


async def run_class_loadtest(
    spec: LoadtestSpec, config: PlatformConfig, monitor: HubMonitor | None, state: StateDir | None
) -> LoadtestReport:
    """The load test as `parhelion loadtest` runs it: on the local platform (``state``) the
    students exist for the run only (a temporary group in the live platform.yaml, removed
    even when the run fails); the report gets the estimated and, locally, the metered cost."""
    group = {"description": "parhelion loadtest (temporary)", "members": spec.usernames}
    if spec.profile:
        group["profiles"] = [spec.profile]
    if state is not None:
        change_file(state.platform_file, PlatformChange(groups={spec.prefix: group}))
    started = time.time()
    try:
        report = await run_loadtest(spec, monitor)
    finally:
        if state is not None:
            change_file(state.platform_file, PlatformChange(remove_groups=[spec.prefix]))
    add_costs(report, config, state.root / "accounting.sqlite" if state else None, started, time.time())
    return report


def add_costs(
    report: LoadtestReport, config: PlatformConfig, ledger_file: Path | None, started: float, ended: float
) -> None:
    """Estimated cost (server time x the profile's $/hour), and the ledger's if there is one."""
    profile = config.profiles[report.spec.profile or config.default_profile]
    report.estimated_usd = sum(o.server_seconds for o in report.outcomes) / 3600 * profile.price_per_hour_usd
    if ledger_file and ledger_file.exists():
        ledger = Ledger(f"sqlite:///{ledger_file.absolute()}")
        try:
            report.metered_usd = sum(ledger.spend_by_user(started, ended, report.spec.usernames).values())
        finally:
            ledger.close()
