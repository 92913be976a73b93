"""The hub's REST API as an admin service uses it: create users, list them, stop servers,
revoke tokens.

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

    async def user(self, username: str) -> dict | None:
        """The hub's model of one user; None if the hub does not know them."""
        try:
            return await self._call("GET", f"/users/{quote(username)}", (200,))
        except HubAdminError as error:
            if ": HTTP 404:" in str(error):
                return None
            raise

    async def revoke_tokens(self, username: str) -> int:
        """Delete every token the user holds (API tokens they made, OAuth tokens of their
        browser sessions with services and servers); how many. A user the hub does not know
        holds none; a token gone meanwhile (deleted twice) is not an error."""
        try:
            listed = await self._call("GET", f"/users/{quote(username)}/tokens", (200,))
        except HubAdminError as error:
            if ": HTTP 404:" in str(error):
                return 0
            raise
        tokens = listed.get("api_tokens", []) if isinstance(listed, dict) else listed
        for token in tokens:
            await self._call("DELETE", f"/users/{quote(username)}/tokens/{quote(token['id'])}", (204, 404))
        return len(tokens)

    async def stop_servers(self, username: str, timeout: float = 120.0) -> list[str]:
        """Stop every server of the user, the default one and named ones, and wait until they
        are gone; the names stopped ("" for the default server)."""
        user = await self.user(username)
        names = sorted((user or {}).get("servers") or {})
        for name in names:
            path = (
                f"/users/{quote(username)}/servers/{quote(name)}"
                if name
                else f"/users/{quote(username)}/server"
            )
            await self._call("DELETE", path, (202, 204, 400, 404))  # 400/404: already stopping or gone
        deadline = asyncio.get_running_loop().time() + timeout
        while names and asyncio.get_running_loop().time() < deadline:
            if not ((await self.user(username)) or {}).get("servers"):
                return names
            await asyncio.sleep(0.5)
        if names:
            raise HubAdminError(f"{username}'s servers did not stop within {timeout:.0f} s")
        return names
