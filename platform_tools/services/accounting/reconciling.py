"""The admin page's reconciliation with the AWS bill: asked for, never on every page view.

Each reconciliation asks Cost Explorer (at $0.01 a request, and throttled at a few a second),
so the page reconciles only the days an admin asks for, and keeps each answer (or its error)
an hour. The ledger is read through its own read-only engine (``ledger.daily.open_read_only``):
a reconciliation never writes it, whatever happens.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

from platform_tools.accounting.bill import explorer_for, reconcile_with_bill
from platform_tools.accounting.reconcile import Reconciliation
from platform_tools.clients.costexplorer import CostExplorerError
from platform_tools.config.models import PlatformConfig
from platform_tools.ledger.daily import open_read_only
from platform_tools.ledger.store import Ledger

#: How long an answer is kept (Cost Explorer refreshes its data a few times a day).
KEEP_SECONDS = 3600.0
#: The most days one request may span (a page, not a data export: the CLI does any range).
MOST_DAYS = 92


@dataclass
class Answer:
    at: float
    result: Reconciliation | None
    error: str | None


class Reconciler:
    def __init__(
        self,
        ledger_url: str,
        explorer_factory: Callable[[PlatformConfig], object] = explorer_for,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ledger_url = ledger_url
        self.explorer_factory = explorer_factory
        self.clock = clock
        self._answers: dict[tuple, Answer] = {}
        self._lock = threading.Lock()
        self._ledger: Ledger | None = None
        # One thread of its own: a reconciliation waits on Cost Explorer (and its backoff, up
        # to a quarter of a minute when throttled); in asyncio's default executor, a few
        # admins' requests queued on the lock would hold every thread the meter's samples, the
        # enforcer's pass and the hub's spawn checks run in.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reconcile")

    async def run(
        self, config: PlatformConfig, first: date, last: date, fold: bool, group: str | None
    ) -> Answer:
        """``reconcile`` in the reconciler's own thread, never in the loop's default executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.reconcile, config, first, last, fold, group)

    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = open_read_only(self.ledger_url)
        return self._ledger

    def reconcile(
        self, config: PlatformConfig, first: date, last: date, fold: bool, group: str | None
    ) -> Answer:
        """The days ``first`` to ``last``, reconciled now or an hour ago (blocking: run it in a
        thread). A bad range is a ValueError; Cost Explorer's refusals are the answer's error."""
        if last < first:
            raise ValueError(f"until {last} is before since {first}")
        if last - first > timedelta(days=MOST_DAYS):
            raise ValueError(
                f"at most {MOST_DAYS} days at once here (`parhelion cost reconcile` does any range)"
            )
        if group is not None and group not in config.groups:
            raise ValueError(f"unknown group {group!r}")
        settings = config.accounting.reconcile
        key = (first, last, fold, group, settings.tag_key, settings.tag_value, settings.metric, config.name)
        now = self.clock()
        with self._lock:
            kept = self._answers.get(key)
            if kept is not None and now - kept.at < KEEP_SECONDS:
                return kept
            try:
                answer = Answer(
                    now,
                    reconcile_with_bill(
                        config, self.ledger(), self.explorer_factory(config), first, last, group, fold
                    ),
                    None,
                )
            except CostExplorerError as exc:
                answer = Answer(now, None, str(exc))
            self._answers = {k: a for k, a in self._answers.items() if now - a.at < KEEP_SECONDS}
            self._answers[key] = answer
            return answer

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._ledger is not None:
            self._ledger.close()
