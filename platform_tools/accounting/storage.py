"""The storage quota on one machine: homes measured, warned at thresholds, spawns refused.

On Kubernetes a home is a volume of the quota's size and the file system itself says no;
on one machine every home shares a disk, so the accounting service enforces
``quota.storage_gib`` (README, "Caps that hold"):

* *Measured*: every home of a user with a storage quota, walked on its own cadence
  (``accounting.storage_check_interval_seconds``, stretched so walking takes at most 5% of
  the service's time) and kept here; allocated blocks, not apparent sizes (``homesize``).
* *Warned*: as a home crosses each of ``accounting.storage_warn_at_percent`` its user gets a
  notice (a ``warn`` event on their spend page), once per crossing: a threshold is told
  again only after the home went back under it by ``REARM_POINTS`` percentage points (a
  home hovering at 80% is not told at every pass).
* *Refused*: at or over 100%, new servers are refused with the sentence the user reads.
  A running server is never stopped for storage (stopping it loses nothing on the disk
  and takes away the one place the user can delete files from); the 100% notice tells them
  to delete files there before they stop it.

An unknown size (not measured yet after a start, a home the service cannot read at all)
refuses nothing: the quota protects a disk, not money, and failing closed would turn a
service restart into a class locked out for a pass; the next pass measures it. A partly
readable home gives a lower bound, which refuses only when already over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from platform_tools.accounting.homesize import HomeSize, measure_home
from platform_tools.config.models import PlatformConfig
from platform_tools.config.policy import resolve
from platform_tools.contract.accounts import user_home
from platform_tools.ledger.store import NewNotice

log = logging.getLogger(__name__)

#: The notices' period key: a storage threshold has no period, only crossings.
STORAGE_KEY = "storage"

#: A threshold is told again after the home went this many percentage points under it.
REARM_POINTS = 5.0

#: The most of the service's time walking homes may take (the cadence stretches beyond it).
MAX_DUTY = 0.05

#: A refusal re-measures the home first (the user may just have deleted files) when its
#: last walk took less than this; a slower home keeps its measurement until the next pass,
#: so that the hub's 5 s check never waits on a walk.
REMEASURE_UNDER_SECONDS = 1.0


def gib_text(gib: float) -> str:
    """A size as people read it: 10.4 GiB, 0.0112 GiB, 250 GiB."""
    if gib >= 100:
        return f"{gib:.0f} GiB"
    if gib >= 1:
        return f"{gib:.1f} GiB"
    return f"{gib:.3g} GiB"


@dataclass(frozen=True)
class StorageStanding:
    """One home against its user's storage quota."""

    username: str
    size: HomeSize
    quota_gib: float

    @property
    def percent(self) -> float:
        return 100.0 * self.size.used_gib / self.quota_gib

    @property
    def over(self) -> bool:
        return self.size.used_bytes >= self.quota_gib * 2**30

    def describe(self) -> str:
        """ "your home uses 10.4 GiB of your 10 GiB storage quota (104%)"."""
        least = "" if self.size.complete else "at least "
        return (
            f"your home uses {least}{gib_text(self.size.used_gib)} of your "
            f"{self.quota_gib:g} GiB storage quota ({self.percent:.0f}%)"
        )

    def warning(self, mark: float, contact: str) -> str:
        """The notice told as the home crosses ``mark`` percent."""
        said = self.describe()
        said = said[0].upper() + said[1:]
        if mark < 100:
            return (
                f"{said}, past the {mark:g}% warning. At 100% new servers are refused: delete "
                "files you no longer need."
            )
        return (
            f"{said}: new servers are refused until it is under. The server you run keeps "
            f"running: delete files there before you stop it, or ask {contact}."
        )

    def refusal(self, contact: str) -> str:
        """The sentence a user reads on the spawn page when over."""
        return (
            f"No new server: {self.describe()}. Delete files to get under it (from a terminal "
            f"on a server you still run), or ask {contact} to delete some or raise your quota; "
            "then start again."
        )


def local_homes(config: PlatformConfig, state_homes: Path, spawner: str) -> dict[str, Path]:
    """The home of every user the platform admits who has a storage quota, wherever the
    running ``spawner`` (``LocalRuntime.spawner_of``) puts it (``contract.accounts.user_home``)."""
    return {
        name: user_home(config, spawner, state_homes, name)
        for name in sorted(config.allowed_users)
        if resolve(config, name).quota.storage_gib is not None
    }


class StorageGauge:
    """The homes' latest measurements, taken a pass at a time off the event loop."""

    def __init__(
        self, homes: Callable[[PlatformConfig], dict[str, Path]], config: Callable[[], PlatformConfig]
    ):
        self.homes = homes
        self.config = config
        self.sizes: dict[str, HomeSize] = {}
        self.pass_seconds = 0.0  # how long the last pass took

    def interval(self) -> float:
        """Seconds between passes: as configured, or more when walking is slow."""
        configured = self.config().accounting.storage_check_interval_seconds
        return max(float(configured), self.pass_seconds / MAX_DUTY)

    def measure_all(self) -> dict[str, HomeSize]:
        """Walk every home once (blocking: the service runs it in a thread)."""
        started = time.monotonic()
        sizes = {}
        for name, home in self.homes(self.config()).items():
            try:
                size = measure_home(home)
            except Exception:  # one odd home must not keep the others unmeasured
                log.exception("could not measure the home of %s (%s)", name, home)
                continue
            if size is not None:
                sizes[name] = size
        self.sizes = sizes
        self.pass_seconds = time.monotonic() - started
        log.debug("measured %d homes in %.2f s", len(sizes), self.pass_seconds)
        return sizes

    def standing(
        self, config: PlatformConfig, username: str, size: HomeSize | None
    ) -> StorageStanding | None:
        quota = resolve(config, username).quota.storage_gib
        if size is None or quota is None:
            return None
        return StorageStanding(username, size, quota)

    def standings(self, config: PlatformConfig) -> dict[str, StorageStanding]:
        found = {}
        for name, size in self.sizes.items():
            standing = self.standing(config, name, size)
            if standing is not None:
                found[name] = standing
        return found

    def for_check(self, config: PlatformConfig, username: str) -> StorageStanding | None:
        """The standing a spawn check judges (blocking). An over-quota home is measured
        again first when that is quick, so files deleted a moment ago count."""
        standing = self.standing(config, username, self.sizes.get(username))
        if standing is None or not standing.over or standing.size.seconds >= REMEASURE_UNDER_SECONDS:
            return standing
        home = self.homes(config).get(username)
        size = measure_home(home) if home is not None else None
        # a new dict, never a change in place: the enforcer's thread may be reading the old one
        others = {name: known for name, known in self.sizes.items() if name != username}
        self.sizes = others if size is None else {**others, username: size}
        return self.standing(config, username, size)


def storage_problem(config: PlatformConfig, standing: StorageStanding | None) -> str | None:
    """Why a new server may not start for storage (None: it may; unknown sizes refuse nothing)."""
    if standing is None or not standing.over:
        return None
    return standing.refusal(config.accounting.contact)


def storage_notices(
    config: PlatformConfig,
    standings: dict[str, StorageStanding],
    claimed: set[tuple[str, float]],
) -> tuple[list[NewNotice], list[tuple[str, str, float]]]:
    """(notices to tell now, claimed notices to re-arm): a threshold reached and not told
    is told; a told threshold the home is now well under (a complete measurement only: a
    lower bound proves nothing about being under) is re-armed for the next crossing."""
    marks = config.accounting.storage_warn_at_percent
    contact = config.accounting.contact
    tell, rearm = [], []
    for name, standing in sorted(standings.items()):
        percent = standing.percent
        for mark in marks:
            told = (name, mark) in claimed
            if percent >= mark and not told:
                tell.append(
                    NewNotice(
                        name, STORAGE_KEY, mark, "warn", f"storage-{mark:g}%", standing.warning(mark, contact)
                    )
                )
            elif told and standing.size.complete and percent < mark - REARM_POINTS:
                rearm.append((name, STORAGE_KEY, mark))
    return tell, rearm
