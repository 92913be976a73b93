"""May this user start a server or a cluster now? Answers with the rule and the numbers.

A refusal says which rule, the spend against the cap, when it resets and whom to
contact — the sentence a person reads on the spawn page or in their Dask client.

Money is at stake, so the checks fail closed: while the meter cannot record usage (the
ledger's disk is full, a source has not answered for minutes), users with a budget are
refused new servers and clusters (``accounting.when_unavailable.budgets: open`` allows
them), since what they would start could not be charged to them.

A new server is also refused while its user's home is at or over its storage quota (one
machine; ``storage.py``); a size not known refuses nothing, since no money is at stake.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from platform_tools.accounting.budgets import UserStanding, user_standing
from platform_tools.accounting.enforcer import describe
from platform_tools.accounting.storage import StorageStanding, storage_problem
from platform_tools.config.models import PlatformConfig
from platform_tools.config.policy import access_problem
from platform_tools.ledger.store import Ledger


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str = ""
    message: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def check_spawn(
    config: PlatformConfig,
    ledger: Ledger,
    username: str,
    profile: str | None,
    now: datetime | None = None,
    meter_problem: str | None = None,
    storage: StorageStanding | None = None,
) -> Verdict:
    if refused := access_problem(config, username):  # a closed class's member, whatever they hold
        return Verdict(False, "access", refused)
    standing = user_standing(config, ledger, username, now or datetime.now(UTC))
    problem = None if profile is None else standing.policy.profile_problem(profile, config.accounting.contact)
    if problem:
        return Verdict(False, "profile", problem)
    if problem := storage_problem(config, storage):
        return Verdict(False, "storage", problem)
    return _budget_verdict(config, standing, "server", meter_problem)


def check_cluster(
    config: PlatformConfig,
    ledger: Ledger,
    username: str,
    now: datetime | None = None,
    meter_problem: str | None = None,
) -> Verdict:
    if refused := access_problem(config, username):  # the gateway asks: a cached session too
        return Verdict(False, "access", refused)
    standing = user_standing(config, ledger, username, now or datetime.now(UTC))
    return _budget_verdict(config, standing, "Dask cluster", meter_problem)


def _budget_verdict(
    config: PlatformConfig, standing: UserStanding, what: str, meter_problem: str | None
) -> Verdict:
    contact = config.accounting.contact
    if meter_problem and standing.standings and config.accounting.when_unavailable.budgets == "closed":
        return Verdict(
            False,
            "meter",
            f"No new {what}: usage cannot be recorded right now ({meter_problem}), and you have a "
            f"budget. Try again in a few minutes; {contact} can tell you more.",
        )
    capped = standing.capped
    if not capped:
        return Verdict(True)
    item = capped[0]
    if item.outside is not None:
        return Verdict(False, "course-window", f"No new {what}: {describe(item)}. Contact {contact}.")
    rule = "budget" if item.scope == "user" else "group-budget"
    return Verdict(False, rule, f"No new {what}: {describe(item)}. Contact {contact} to raise it.")
