"""The hub's REST API as an admin service uses it: create users, list them, stop servers.

Parhelion's class commands speak to the hub as the ``parhelion-admin`` service (its token
is in the local platform's state directory; on Kubernetes, a hub service token). Errors
say which call failed and what the hub answered.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp


class HubAdminError(RuntimeError):
    pass


class HubAdmin:
    def __init__(self, api_url: str, token: str, timeout: float = 30.0):
        self.api_url = api_url.rstrip("/")
        self.headers = {"Authorization": f"token {token}"}
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HubAdmin:
        self._session = aiohttp.ClientSession(headers=self.headers, timeout=self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, ok: tuple[int, ...], **kwargs) -> Any:
        assert self._session is not None, "use `async with HubAdmin(...)`"
        async with self._session.request(method, f"{self.api_url}{path}", **kwargs) as answer:
            if answer.status not in ok:
                text = (await answer.text())[:300]
                raise HubAdminError(f"{method} {path}: HTTP {answer.status}: {text}")
            if answer.content_type == "application/json":
                return await answer.json()
            return None

    async def users(self) -> dict[str, dict]:
        found = await self._call("GET", "/users?limit=100000", (200,))
        items = found["items"] if isinstance(found, dict) and "items" in found else found
        return {user["name"]: user for user in items}

    async def create_users(self, usernames: list[str]) -> list[str]:
        """Create the users the hub does not know yet; the names created."""
        known = await self.users()
        missing = [name for name in usernames if name not in known]
        if missing:
            await self._call("POST", "/users", (201,), json={"usernames": missing})
        return missing

    async def stop_server(self, username: str, timeout: float = 120.0) -> bool:
        """Stop the user's default server if it runs; True if one was stopped."""
        user = (await self.users()).get(username)
        if not user or not user.get("servers"):
            return False
        await self._call("DELETE", f"/users/{quote(username)}/server", (202, 204))
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            user = (await self.users()).get(username) or {}
            if not user.get("servers"):
                return True
            await asyncio.sleep(0.5)
        raise HubAdminError(f"{username}'s server did not stop within {timeout:.0f} s")
