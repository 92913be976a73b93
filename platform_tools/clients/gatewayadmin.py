"""Parhelion's stop route on dask-gateway, as `parhelion class close` calls it.

The same route the accounting service's enforcer uses (``contract.GatewayPath.stop``, with
the accounting token): every cluster of one user is stopped, and the names are returned. It
is idempotent - a user with nothing running gets an empty list - so a close that was
interrupted can simply be run again.
"""

from __future__ import annotations

import aiohttp

from platform_tools.contract.services import GatewayPath, gateway_api
from platform_tools.contract.tokens import authorization


class GatewayAdminError(RuntimeError):
    pass


class GatewayAdmin:
    """Stops users' Dask clusters through the gateway at ``origin`` (its proxy's origin, or
    the hub's public URL, whose proxy routes the gateway's prefix to it)."""

    def __init__(self, origin: str, token: str, timeout: float = 120.0):
        self.origin = origin
        self.headers = authorization(token)
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def stop_clusters(self, username: str) -> list[str]:
        """Stop all of the user's clusters; their names."""
        url = gateway_api(self.origin, GatewayPath.stop(username))
        async with (
            aiohttp.ClientSession(headers=self.headers, timeout=self.timeout) as session,
            session.post(url) as answer,
        ):
            if answer.status != 200:
                text = (await answer.text())[:300]
                raise GatewayAdminError(
                    f"stopping {username}'s Dask clusters: HTTP {answer.status} from {url}: {text}"
                )
            return list((await answer.json()).get("stopped", []))
