"""The meter's clock: wall time for the ledger, advanced by monotonic time.

The ledger charges each running resource from one sample to the next, so a sample's time
decides money. The wall clock can step (NTP correcting a VM, an admin's `date -s`): once a
+1 day step billed 30 s of use as $1.15, and since ledger times never move backwards, the
error stayed. The rule:

* Between two samples of one process the ledger advances by the monotonic time that
  passed, at most ``max_step`` seconds a sample (a few sample intervals): a meter that
  stalled longer charges the stall over the following samples, never in one jump, and
  never drops it (monotonic time cannot step: what passed, ran). A wall clock that disagrees with that by
  more than ``tolerance`` stepped: the difference goes into ``offset`` (ledger time minus
  wall time), the step is logged, and charging goes on from the ledger's own time.
* The offset is stored with the sample (``meter_state``), so a restart keeps it; the
  first sample after a restart starts from the wall clock plus that offset, but never
  before the last recorded sample (the time the service was down, with things still
  running, is charged: it cannot be told from a step taken while down).
* Times the sources report (a server's start) are wall times: the meter adds the offset
  and never lets one lie after the sample's own time.

Failed samples (a source that does not answer, a full disk) still advance the clock, so
the next recorded sample charges the whole gap since the last recorded one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Tick:
    """One sample's time on the ledger, and the clock step it found (0 if none)."""

    at: float
    step: float = 0.0


class MeterClock:
    def __init__(
        self,
        max_step: Callable[[], float],
        last_recorded: float | None = None,
        offset: float = 0.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        tolerance: float = 2.0,
    ):
        self.max_step = max_step
        self.offset = offset
        self.wall = wall
        self.monotonic = monotonic
        self.tolerance = tolerance
        self._last_recorded = last_recorded
        self._previous: tuple[float, float] | None = None  # (ledger time, monotonic time)
        self._stepped_at: float | None = None  # wall time just after the latest step
        self._charged = 0.0  # the time of the latest tick: charged up to there

    def now(self) -> float:
        """Ledger time now, without taking a sample (for checks and pages)."""
        return self.wall() + self.offset

    def tick(self) -> Tick:
        """The time of the sample taken now."""
        wall, mono = self.wall(), self.monotonic()
        if self._previous is None:
            at = wall + self.offset
            if self._last_recorded is not None and at < self._last_recorded:
                self.offset += self._last_recorded - at  # never before what is recorded
                at = self._last_recorded
            self._previous = (at, mono)
            self._charged = at
            return Tick(at)
        previous, previous_mono = self._previous
        elapsed = max(0.0, mono - previous_mono)
        expected = previous + elapsed  # the ledger's own time now
        observed = wall + self.offset
        step = 0.0
        if abs(observed - expected) > self.tolerance + 0.001 * elapsed:
            step = observed - expected
            self.offset -= step
            self._stepped_at = wall
            log.warning(
                "the wall clock stepped by %+.1f s; the ledger keeps to monotonic time (offset %+.1f s)",
                step,
                self.offset,
            )
        self._previous = (expected, mono)
        limit = self.max_step()
        at = min(expected, self._charged + limit)
        if at < expected:
            log.warning(
                "the meter is %.0f s behind; charging %.0f s of it in this sample",
                expected - self._charged,
                limit,
            )
        self._charged = at
        return Tick(at, step)

    def started(self, wall_started: float, at: float) -> float:
        """A source's wall-clock start time on the ledger's clock, never after ``at``.

        A start stamped before the latest step (a wall time below the one the step was
        seen at, for a forward step) is already on the ledger's clock."""
        stepped_before = self._stepped_at is not None and wall_started < self._stepped_at - self.max_step()
        return min(wall_started if stepped_before else wall_started + self.offset, at)
