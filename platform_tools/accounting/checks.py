"""May this user start a server or a cluster now? Answers with the rule and the numbers.

A refusal says which rule, the spend against the cap, when it resets and whom to
contact — the sentence a person reads on the spawn page or in their Dask client.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from ..config.models import PlatformConfig
from .budgets import user_standing
from .enforcer import describe
from .ledger import Ledger


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
    standing = user_standing(config, ledger, username, now or datetime.now(UTC))
    if profile is not None and profile not in standing.policy.profiles:
        allowed = ", ".join(standing.policy.profiles) or "none"
        return Verdict(
            False,
            "profile",
            f"The profile {profile!r} is not available to you "
            f"(yours: {allowed}). Contact {config.accounting.contact}.",
        )
    return _budget_verdict(config, standing, "server")


def check_cluster(
    config: PlatformConfig, ledger: Ledger, username: str, now: datetime | None = None
) -> Verdict:
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
