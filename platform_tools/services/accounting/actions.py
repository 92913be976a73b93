"""What the enforcer and the class sessions do to the world, through other services' APIs.

Servers stop through the hub's REST API (the service's own hub token), clusters through
Parhelion's route on dask-gateway (the accounting token), placeholders by patching the
chart's StatefulSet (the service's one write permission on Kubernetes).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from platform_tools.accounting.enforcer import Actions
from platform_tools.classes.placeholders import Placeholders, scale_placeholders
from platform_tools.clients.kubernetes import api_client
from platform_tools.contract.services import GatewayPath, gateway_api
from platform_tools.contract.tokens import authorization

log = logging.getLogger("parhelion.accounting")


def hub_actions(hub_api_url: str, gateway_url: str | None, hub_token: str, internal_token: str) -> Actions:
    """Stop servers through the hub's API and clusters through the gateway's route.

    ``gateway_url`` is the gateway proxy's origin (``contract.gateway_api`` adds the prefix).
    """
    client = AsyncHTTPClient()

    async def stop_servers(username: str) -> list[str]:
        request = HTTPRequest(f"{hub_api_url}/users/{username}", headers=authorization(hub_token))
        answer = await client.fetch(request, raise_error=False)
        if answer.code == 404:  # the hub does not know them (deleted): no servers to stop
            return []
        answer.rethrow()
        user = json.loads(answer.body)
        stopped = []
        for name in user.get("servers") or {}:
            path = (
                f"{hub_api_url}/users/{username}/servers/{name}"
                if name
                else f"{hub_api_url}/users/{username}/server"
            )
            await client.fetch(
                HTTPRequest(path, method="DELETE", headers=authorization(hub_token)), raise_error=False
            )
            stopped.append(f"server {name or '(default)'}")
        return stopped

    async def stop_clusters(username: str) -> list[str]:
        if not gateway_url:
            return []
        try:
            request = HTTPRequest(
                gateway_api(gateway_url, GatewayPath.stop(username)),
                method="POST",
                body=b"",
                headers=authorization(internal_token),
            )
            answer = json.loads((await client.fetch(request)).body)
        except Exception as exc:
            log.warning("could not stop the clusters of %s: %s", username, exc)
            return []
        # on Kubernetes a cluster is "<namespace>.<hex>": people know it by the hex
        return [f"cluster {name.rsplit('.', 1)[-1][:8]}" for name in answer.get("stopped", [])]

    return Actions(stop_servers, stop_clusters)


SessionAction = Callable[[Any, str], Awaitable[None]]


def placeholder_actions(
    namespace: str, statefulset: str, configuration: Any = None
) -> tuple[SessionAction, SessionAction]:
    """Scale the chart's placeholders for a class (prewarm) and back to none (release)."""
    from kubernetes_asyncio import client

    async def scale(config, name: str, release: bool) -> None:
        wanted = Placeholders.for_class(config, name, release=release)
        async with api_client(configuration) as api:
            await scale_placeholders(client.AppsV1Api(api), namespace, statefulset, wanted)

    async def prewarm(config, name: str) -> None:
        await scale(config, name, release=False)

    async def release(config, name: str) -> None:
        await scale(config, name, release=True)

    return prewarm, release
