"""The accounting service's object, loops and web server.

People reach it through the hub with HubOAuth: the spend page, the admin view and the JSON
API (a user sees only their own; admins see all). The hub's pre-spawn hook and the gateway
ask it the checks (``contract.AccountingPath``) with an internal token; Prometheus scrapes
its metrics with the same token. Loops run inside: the meter (every
``sample_interval_seconds``), the enforcer (every ``enforce_interval_seconds``), on one
machine the homes' measurement against the storage quota (every
``storage_check_interval_seconds`` or slower, in a thread) and, when classes are served,
their sessions' prewarm and release (every 30 s).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from tornado import web

from platform_tools.accounting.enforcer import Actions, Enforcer
from platform_tools.accounting.meterclock import MeterClock
from platform_tools.accounting.metrics import Metrics
from platform_tools.accounting.sources import SourceError, Sources
from platform_tools.accounting.storage import StorageGauge
from platform_tools.classes.sessions import SessionScheduler
from platform_tools.config.live import LiveConfig
from platform_tools.ledger.store import Ledger, Observation
from platform_tools.services.accounting.handlers import handlers

log = logging.getLogger("parhelion.accounting")

SESSION_CHECK_SECONDS = 30.0


class Accounting:
    """The service's state: configuration, ledger, meter sources, enforcer, metrics."""

    def __init__(
        self,
        live: LiveConfig,
        ledger: Ledger,
        sources: Sources,
        actions: Actions,
        internal_token: str,
        prefix: str,
        sessions: SessionScheduler | None = None,
        storage: StorageGauge | None = None,
    ):
        self.live = live
        self.ledger = ledger
        self.sources = sources
        self.storage = storage  # one machine's homes against the storage quota
        self.enforcer = Enforcer(ledger, actions, live.current, storage)
        self.internal_token = internal_token
        self.prefix = prefix
        self.metrics = Metrics()
        self.sessions = sessions  # classes prewarmed before each session
        self.clock = MeterClock(self.max_step, ledger.last_sample_at(), ledger.clock_offset())
        self.recorded_at = time.monotonic()  # the last sample written (start counts as one)
        self.write_error: str | None = None  # why the last sample could not be written

    def max_step(self) -> float:
        """The most one sample charges: a few intervals, at least a minute."""
        return max(60.0, 3.0 * self.live.current().accounting.sample_interval_seconds)

    def now(self) -> datetime:
        """The time checks and pages judge by: the meter's clock."""
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def meter_problem(self) -> str | None:
        """Why usage cannot be recorded now, or None. Checks refuse budgeted users meanwhile."""
        if self.write_error is not None:
            return f"the ledger cannot be written: {self.write_error}"
        silent = time.monotonic() - self.recorded_at
        if silent > self.max_step():
            return f"no usage recorded for {silent:.0f} s"
        return None

    async def sample(self) -> None:
        """One sample: what runs, priced, into the ledger. A source that fails or hangs (any
        error, or no answer within half the most a sample charges) skips the sample whole;
        the clock still ticks, so the next recorded sample charges the gap."""
        try:
            observations = await asyncio.wait_for(self.sources.observe(), timeout=self.max_step() / 2)
        except Exception as exc:
            self.metrics.sample_failures.inc()
            reason = exc if isinstance(exc, SourceError) else _first_line(exc)
            log.warning("sample skipped: %s", reason or "the sources did not answer in time")
            self.clock.tick()
            return
        self.metrics.unpriced_nodes.set(len(getattr(self.sources, "unpriced", ())))
        last = self.ledger.last_sample_at()
        tick = self.clock.tick()
        if tick.step:
            self.metrics.clock_steps.inc()
        observations = [self._on_clock(obs, tick.at, last) for obs in observations]
        try:
            await asyncio.to_thread(self.ledger.record_sample, tick.at, observations, self.clock.offset)
        except Exception as exc:  # a full disk, a lost database: refuse budgeted spawns until it heals
            self.metrics.ledger_write_failures.inc()
            self.write_error = _first_line(exc)
            log.error("could not record a sample (%d resources): %s", len(observations), self.write_error)
            return
        if self.write_error is not None:
            log.warning("the ledger is written again (the gap since the last sample is charged)")
        self.write_error = None
        self.recorded_at = time.monotonic()
        self.metrics.samples.inc()

    def _on_clock(self, obs: Observation, at: float, last: float | None) -> Observation:
        """``obs`` with its start on the ledger's clock. A volume first seen now (a quota just
        given, a row lost to a recovery) is charged from the last sample, not from when its
        folder or claim was made: it was not metered then."""
        started = self.clock.started(obs.started_at, at)
        if obs.kind == "storage" and last is not None:
            started = max(started, min(last, at))
        return dataclasses.replace(obs, started_at=started)

    async def render_metrics(self) -> bytes:
        """The metrics, per-user gauges computed now: at scrape time, not every sample (at
        2,000 users that doubled the time a sample held the service's one core)."""
        await asyncio.to_thread(self.metrics.update_spend, self.live.current(), self.ledger, self.now())
        if self.storage is not None:
            for username, size in self.storage.sizes.items():
                self.metrics.home_used.labels(username).set(size.used_bytes)
            self.metrics.storage_pass_seconds.set(self.storage.pass_seconds)
        return self.metrics.render()

    async def enforce(self) -> None:
        await self.enforcer.run_once(self.now())

    async def measure_storage(self) -> None:
        """Walk every home once, off the event loop (checks keep answering meanwhile)."""
        if self.storage is not None:
            await asyncio.to_thread(self.storage.measure_all)

    async def loop(self, every: str, action) -> None:
        """``action`` at the interval the live config's ``accounting.<every>`` says now."""
        await repeat(action, lambda: getattr(self.live.current().accounting, every))


async def repeat(action, seconds) -> None:
    """Run ``action`` for ever, ``seconds()`` apart; a failure is logged, not fatal."""
    while True:
        try:
            await action()
        except Exception:
            log.exception("%s failed", getattr(action, "__qualname__", action))
        await asyncio.sleep(seconds())


def make_app(accounting: Accounting) -> web.Application:
    return web.Application(
        handlers(accounting.prefix),
        accounting=accounting,
        cookie_secret=os.urandom(32),
        xsrf_cookies=False,
        template_path=str(Path(__file__).with_name("templates")),
    )


async def serve(accounting: Accounting, port: int, address: str) -> None:
    """The web app and the meter, enforcer and session loops, until SIGINT or SIGTERM."""
    app = make_app(accounting)
    app.listen(port, address=address)
    log.info("accounting listening on %s:%s%s", address, port, accounting.prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [
        asyncio.create_task(accounting.loop("sample_interval_seconds", accounting.sample)),
        asyncio.create_task(accounting.loop("enforce_interval_seconds", accounting.enforce)),
    ]
    if accounting.storage is not None:
        tasks.append(asyncio.create_task(repeat(accounting.measure_storage, accounting.storage.interval)))
    if accounting.sessions is not None:
        tasks.append(asyncio.create_task(repeat(accounting.sessions.run_once, lambda: SESSION_CHECK_SECONDS)))
    await stop.wait()
    for task in tasks:
        task.cancel()
    accounting.ledger.close()


def _first_line(exc: BaseException) -> str:
    """An exception as one short line (SQLAlchemy's carry the statement and a link)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
