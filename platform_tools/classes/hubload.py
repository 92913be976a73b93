"""The hub's own load while a load test runs: CPU (100% = one core) and resident memory.

Two ways to watch the same figures, so that a load test reports them against any hub:

- ``ProcessMonitor`` reads the hub process itself (psutil), when the hub runs on this machine;
- ``MetricsMonitor`` reads the hub's Prometheus endpoint, ``/hub/metrics``, which JupyterHub
  serves through its proxy on every deployment. Its process collector exports
  ``process_cpu_seconds_total`` and ``process_resident_memory_bytes`` (Linux hubs, which all
  are); CPU is the counter's rise over the wall time between two scrapes. JupyterHub asks for
  a token with the ``read:metrics`` scope there (admins hold it; an admin makes one on the
  hub's token page).

Both sample every ``interval`` seconds in the background; a monitor that cannot measure says
why in ``problem`` instead of failing the load test.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import psutil
from prometheus_client.parser import text_string_to_metric_families

CPU_SECONDS = "process_cpu_seconds_total"
RESIDENT_BYTES = "process_resident_memory_bytes"


class HubMonitor:
    """Background sampling of the hub's CPU and memory; subclasses say where they read them."""

    source = ""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.cpu: list[float] = []
        self.rss_mib: list[float] = []
        self.problem: str | None = None  # why nothing (more) could be measured
        self._task: asyncio.Task | None = None

    async def _read(self) -> tuple[float, float]:
        """The hub's CPU seconds so far and its resident memory in bytes."""
        raise NotImplementedError

    async def open(self) -> None:
        """Set-up before the first sample."""

    async def close(self) -> None:
        """Release what ``open`` took."""

    async def _sample(self) -> None:
        try:
            cpu_before, _ = await self._read()
            wall_before = time.monotonic()
            while True:
                await asyncio.sleep(self.interval)
                cpu, resident = await self._read()
                wall = time.monotonic()
                self.cpu.append(100 * (cpu - cpu_before) / (wall - wall_before))
                self.rss_mib.append(resident / 2**20)
                cpu_before, wall_before = cpu, wall
        except MonitorError as error:
            self.problem = str(error)

    async def __aenter__(self) -> HubMonitor:
        await self.open()
        self._task = asyncio.ensure_future(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.close()


class MonitorError(RuntimeError):
    """The hub's load cannot be read (any more); the message says why."""


class ProcessMonitor(HubMonitor):
    """The hub process on this machine, by pid."""

    source = "hub process"

    def __init__(self, pid: int, interval: float = 1.0):
        super().__init__(interval)
        self.pid = pid
        self._process: psutil.Process | None = None

    async def _read(self) -> tuple[float, float]:
        try:
            if self._process is None:
                self._process = psutil.Process(self.pid)
            if self._process.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped
                raise psutil.NoSuchProcess(self.pid)
            times = self._process.cpu_times()
            return times.user + times.system, self._process.memory_info().rss
        except psutil.Error as error:
            raise MonitorError(f"hub process {self.pid}: {type(error).__name__}") from None


class MetricsMonitor(HubMonitor):
    """Any hub, through the Prometheus metrics it serves at /hub/metrics."""

    source = "/hub/metrics"

    def __init__(self, hub_url: str, token: str, interval: float = 2.0):
        super().__init__(interval)
        self.metrics_url = f"{hub_url.rstrip('/')}/hub/metrics"
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"token {self.token}"}, timeout=aiohttp.ClientTimeout(total=30)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _read(self) -> tuple[float, float]:
        assert self._session is not None, "use MetricsMonitor in `async with`"
        try:
            async with self._session.get(self.metrics_url, allow_redirects=False) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise MonitorError(f"{self.metrics_url}: {type(error).__name__}: {error}") from None
        if status in (401, 403):
            raise MonitorError(
                f"{self.metrics_url} answered {status}: the token needs the read:metrics scope"
            )
        if status != 200:
            raise MonitorError(f"{self.metrics_url} answered {status}")
        return process_figures(text, self.metrics_url)


def process_figures(text: str, where: str) -> tuple[float, float]:
    """CPU seconds and resident bytes from a Prometheus text exposition."""
    values: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in (CPU_SECONDS, RESIDENT_BYTES):
                    values[sample.name] = sample.value
    except ValueError as error:
        raise MonitorError(f"{where}: not Prometheus metrics ({error})") from None
    missing = [name for name in (CPU_SECONDS, RESIDENT_BYTES) if name not in values]
    if missing:
        raise MonitorError(f"{where} has no {' or '.join(missing)} (not a Linux hub?)")
    return values[CPU_SECONDS], values[RESIDENT_BYTES]
