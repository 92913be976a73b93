"""What closing a class takes back from the members who lose access, on every backend.

Marking a class closed stops new logins, and every gate (the hub's login and pre-spawn check,
the accounting checks the gateway asks) refuses its members from then on. What they already
hold would outlive that for a while: an API token and the hub's OAuth tokens authenticate
until the hub's next admission check, dask-gateway caches a session for minutes, and servers
and clusters run until stopped. So close takes it back, member by member: tokens revoked,
servers stopped, clusters stopped - in that order, so nothing new can be started with what is
being taken away.

Only members who lose access (``policy.access_problem`` on the class as closed): a TA in the
roster who is also in another group, or an admin, keeps their tokens, servers, clusters and
home. Every step is idempotent, so a close that was interrupted is simply run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from platform_tools.clients.gatewayadmin import GatewayAdmin
from platform_tools.clients.hubadmin import HubAdmin
from platform_tools.config import PlatformConfig
from platform_tools.config.policy import access_problem


@dataclass
class Revoked:
    """What was taken back from one member."""

    tokens: int = 0
    servers: list[str] = field(default_factory=list)  # "" is the default server
    clusters: list[str] = field(default_factory=list)


def losing_access(closed: PlatformConfig, members: list[str]) -> tuple[list[str], list[str]]:
    """(members who lose access, members who keep it) once the class is closed in ``closed``."""
    losing = [user for user in members if access_problem(closed, user)]
    return losing, [user for user in members if user not in losing]


async def revoke_access(hub: HubAdmin, gateway: GatewayAdmin | None, users: list[str]) -> dict[str, Revoked]:
    """Revoke each user's tokens, stop their servers, then their Dask clusters."""
    revoked = {}
    for user in users:
        done = Revoked(tokens=await hub.revoke_tokens(user))
        done.servers = await hub.stop_servers(user)
        if gateway is not None:
            done.clusters = await gateway.stop_clusters(user)
        revoked[user] = done
    return revoked


def summary(revoked: dict[str, Revoked], kept: list[str]) -> list[str]:
    """The lines `parhelion class close` prints about access."""
    lines = [
        f"access removed from {len(revoked)} member(s): "
        f"{sum(r.tokens for r in revoked.values())} token(s) revoked, "
        f"{sum(len(r.servers) for r in revoked.values())} server(s) and "
        f"{sum(len(r.clusters) for r in revoked.values())} Dask cluster(s) stopped"
    ]
    if kept:
        lines.append(f"kept access (in other groups, or admins): {', '.join(kept)}")
    return lines
