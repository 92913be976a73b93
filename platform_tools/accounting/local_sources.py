"""The meter: what runs for whom, priced, as ledger observations.

Locally the sources are the hub's REST API (servers, their profile and start time), the
gateway's accounting route (clusters, schedulers and workers with their sizes) and the
users' home folders (charged at their provisioned size: the storage quota, as a volume
of that size would be on Kubernetes). On Kubernetes the source is the pods, nodes and
volume claims (``kubernetes_sources.py``); both implement ``sources.Sources`` and feed
the same ledger through the same cost rule.

A sample is all-or-nothing: if any source does not answer, the sample is skipped rather
than recorded without it (which would end that source's lifetimes by mistake).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from platform_tools.accounting.sources import SourceError
from platform_tools.config.models import PlatformConfig
from platform_tools.config.policy import resolve
from platform_tools.contract.services import GatewayPath, gateway_api
from platform_tools.contract.tokens import authorization
from platform_tools.ledger.store import Observation
from platform_tools.local.homes import home_lifetime
from platform_tools.pricing.catalog import Node, PriceCatalog
from platform_tools.pricing.cost import hourly_cost, storage_hourly_cost
from platform_tools.pricing.node import priced_node

log = logging.getLogger(__name__)

#: What asks JupyterHub's list endpoints for ``{"items": [...], "_pagination": {...}}``.
PAGINATION_MEDIA_TYPE = "application/jupyterhub-pagination+json"


def server_observations(users: list[dict], config: PlatformConfig, node: Node) -> list[Observation]:
    """Observations for the hub's servers (the /users API model, with servers)."""
    observations = []
    for user in users:
        for server_name, server in (user.get("servers") or {}).items():
            started = server.get("started")
            # A server still starting is charged from its start once it runs; one waiting in the
            # spawn line is not running at all (the line stamps ``started`` when its turn comes).
            if not started or server.get("pending") == "spawn":
                continue
            profile_name = (server.get("user_options") or {}).get("profile") or config.default_profile
            profile = config.profiles.get(profile_name) or config.profiles[config.default_profile]
            observations.append(
                Observation(
                    resource_key=f"server:{user['name']}:{server_name}:{started}",
                    username=user["name"],
                    kind="server",
                    started_at=_timestamp(started),
                    rate_per_hour=hourly_cost(profile.cpu_guarantee, profile.mem_guarantee_gib, node),
                    description=f"server {server_name or '(default)'} ({profile_name})",
                    cpu=profile.cpu_guarantee,
                    memory_gib=profile.mem_guarantee_gib,
                    instance_type=node.instance_type,
                    capacity_type=node.capacity_type,
                )
            )
    return observations


def cluster_observations(clusters: list[dict], node: Node) -> list[Observation]:
    """Observations for the gateway's clusters: a scheduler and workers each."""
    observations = []
    for cluster in clusters:
        parts = [("scheduler", "dask-scheduler", cluster["start_time"], cluster["scheduler"])]
        parts += [(w["name"], "dask-worker", w["start_time"], w) for w in cluster["workers"]]
        for name, kind, started, size in parts:
            observations.append(
                Observation(
                    resource_key=f"dask:{cluster['name']}:{name}",
                    username=cluster["username"],
                    kind=kind,
                    started_at=float(started),
                    rate_per_hour=hourly_cost(size["cores"], size["memory_gib"], node),
                    description=f"cluster {cluster['name'][:8]} {name}",
                    cpu=size["cores"],
                    memory_gib=size["memory_gib"],
                    instance_type=node.instance_type,
                    capacity_type=node.capacity_type,
                )
            )
    return observations


def home_observations(
    homes: Mapping[str, Path], config: PlatformConfig, per_gib_hour: float
) -> list[Observation]:
    """A home folder is a volume of the user's storage quota (uncharged without one).

    ``homes``: hub user -> their home (``local.homes.user_homes``, wherever the spawner puts it).
    """
    observations = []
    for username, home in sorted(homes.items()):
        size = resolve(config, username).quota.storage_gib
        if size is None:
            continue
        try:
            life, born = home_lifetime(home)
        except FileNotFoundError:  # removed since it was listed
            continue
        observations.append(
            Observation(
                # one lifetime per life of the folder, not per user (see home_lifetime)
                resource_key=f"storage:{username}:home:{life}",
                username=username,
                kind="storage",
                started_at=born,
                rate_per_hour=storage_hourly_cost(size, per_gib_hour),
                description=f"home volume ({size:g} GiB)",
                storage_gib=size,
                previous_key=f"storage:{username}:home",  # its key before 2026.11 (issue 17)
            )
        )
    return observations


@dataclass
class LocalSources:
    """Where the local platform's usage is read from."""

    hub_api_url: str
    hub_token: str
    gateway_url: str | None  # the gateway proxy's origin; None when the gateway is off
    accounting_token: str
    homes: Callable[[PlatformConfig], Mapping[str, Path]]  # user -> home (local.homes.user_homes)
    catalog: Callable[[], PriceCatalog]
    config: Callable[[], PlatformConfig]

    async def observe(self) -> list[Observation]:
        config = self.config()
        catalog = self.catalog()
        node = priced_node(config, catalog)
        users = await self._active_users()
        observations = server_observations(users, config, node)
        if self.gateway_url:
            usage = await self._get_json(
                gateway_api(self.gateway_url, GatewayPath.USAGE), self.accounting_token
            )
            observations += cluster_observations(usage["clusters"], node)
        region = config.accounting.virtual_node.region
        observations += home_observations(self.homes(config), config, catalog.storage_per_gib_hour(region))
        return observations

    async def _active_users(self) -> list[dict]:
        """Every user with an active server, page after page.

        The hub answers a list with at most ``api_page_max_limit`` items (200 by default):
        read as one answer, users past the first page were never metered nor capped. Asked
        for its pagination envelope (JupyterHub >= 2), the hub says where the next page is;
        it is followed until there is none. A hub that ignores the header returns a plain
        list, which is then the whole answer.
        """
        users: dict[str, dict] = {}  # by name: a user may move between pages as others come and go
        offset = 0
        while True:
            page = await self._get_json(
                f"{self.hub_api_url}/users?state=active&offset={offset}",
                self.hub_token,
                accept=PAGINATION_MEDIA_TYPE,
            )
            if isinstance(page, list):
                return page
            users |= {user["name"]: user for user in page["items"]}
            following = (page.get("_pagination") or {}).get("next")
            if not following or not page["items"]:
                return list(users.values())
            offset = int(following["offset"])

    async def _get_json(self, url: str, token: str, accept: str = "application/json"):
        headers = {**authorization(token), "Accept": accept}
        request = HTTPRequest(url, headers=headers, request_timeout=10)
        try:
            response = await AsyncHTTPClient().fetch(request)
        except Exception as exc:  # tornado raises several kinds; all mean "no answer"
            raise SourceError(f"{url}: {exc}") from exc
        return json.loads(response.body)


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
