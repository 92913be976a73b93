"""May this user start a server or a cluster now? Answers with the rule and the numbers.

A refusal says which rule, the spend against the cap, when it resets and whom to
contact — the sentence a person reads on the spawn page or in their Dask client.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from platform_tools.accounting.budgets import user_standing
from platform_tools.accounting.enforcer import describe
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
    config: PlatformConfig, ledger: Ledger, username: str, profile: str | None, now: datetime | None = None
) -> Verdict:
    if refused := access_problem(config, username):  # a closed class's member, whatever they hold
        return Verdict(False, "access", refused)
    standing = user_standing(config, ledger, username, now or datetime.now(UTC))
    problem = None if profile is None else standing.policy.profile_problem(profile, config.accounting.contact)
    if problem:
        return Verdict(False, "profile", problem)
    return _budget_verdict(config, standing, "server")


def check_cluster(
    config: PlatformConfig, ledger: Ledger, username: str, now: datetime | None = None
) -> Verdict:
    if refused := access_problem(config, username):  # the gateway asks: a cached session too
        return Verdict(False, "access", refused)
    return _budget_verdict(
        config, user_standing(config, ledger, username, now or datetime.now(UTC)), "Dask cluster"
    )


def _budget_verdict(config: PlatformConfig, standing, what: str) -> Verdict:
    capped = standing.capped
    if not capped:
        return Verdict(True)
    item = capped[0]
    return Verdict(
        False,
        "budget" if item.scope == "user" else "group-budget",
        f"No new {what}: {describe(item)}. Contact {config.accounting.contact} to raise it.",
    )
