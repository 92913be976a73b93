"""Per-user aggregate limits for dask-gateway, which upstream only bounds per cluster.

``max_dask_clusters``, ``max_dask_cores`` and ``max_dask_memory_gib`` count ALL of a
user's clusters together (one Pangeo user once had 8,766 worker pods from an unbounded
adapt()). Two places enforce them:

* ``start_cluster``: a new cluster is refused, with a message the client shows, when the
  user already runs ``max_dask_clusters``, or when even its scheduler would not fit in
  what is left of the cores or memory, or when the budget says no;
* ``on_cluster_heartbeat``: the number of workers a scheduler asks for (``scale`` or
  ``adapt``) is clamped to what fits next to the user's other clusters.

The backend also serves the accounting service: a private route lists every running
cluster and worker with its size (the meter), and stops a user's clusters (the
enforcer). Both need the accounting token.
"""

from __future__ import annotations

import json
import math
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.db_base import JobStatus
from dask_gateway_server.backends.local import LocalBackend, UnsafeLocalBackend
from dask_gateway_server.models import User
from dask_gateway_server.routes import api_handler
from traitlets import TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from platform_tools.config import PlatformConfig
from platform_tools.config.live import LiveConfig
from platform_tools.config.policy import resolve
from platform_tools.contract.services import AccountingPath, GatewayPath, accounting_api
from platform_tools.contract.tokens import authorization, token_matches

GIB = 2**30


class ClusterRefused(PublicException):
    """A refusal the gateway returns as HTTP 422; the client raises it with this message."""


def cluster_size(config: Any, workers: int) -> tuple[float, float]:
    """(cores, memory GiB) of a cluster's scheduler plus ``workers`` workers."""
    cores = config["scheduler_cores"] + workers * config["worker_cores"]
    memory = (config["scheduler_memory"] + workers * config["worker_memory"]) / GIB
    return cores, memory


def workers_that_fit(config: Any, cores_left: float | None, memory_left_gib: float | None) -> int | None:
    """How many workers of this cluster fit beside its scheduler; None for no limit."""
    limits = []
    if cores_left is not None:
        limits.append((cores_left - config["scheduler_cores"]) / config["worker_cores"])
    if memory_left_gib is not None:
        limits.append((memory_left_gib - config["scheduler_memory"] / GIB) / (config["worker_memory"] / GIB))
    if not limits:
        return None
    return max(0, math.floor(min(limits) + 1e-9))


class AggregateLimitsMixin(LoggingConfigurable):
    """Aggregate per-user limits for a DB-backed dask-gateway backend (mixed in first)."""

    platform_config_path = Unicode(
        os.environ.get("PARHELION_CONFIG", ""), help="platform.yaml, re-read when it changes.", config=True
    )
    accounting_url = Unicode(
        "", help="The accounting service's origin, as registered with the hub (no prefix).", config=True
    )
    accounting_token = Unicode("", help="Token for the accounting service and our routes.", config=True)

    @validate("accounting_url")
    def _origin_only(self, proposal):
        """A URL with the service's prefix would be joined wrong at every check: refused at start."""
        if proposal.value:
            try:
                accounting_api(proposal.value, "")
            except ValueError as error:
                raise TraitError(
                    f"AggregateLimitsMixin.accounting_url (PARHELION_ACCOUNTING_URL): {error}"
                ) from None
        return proposal.value

    _live: LiveConfig | None = None

    # ------------------------------------------------------------- settings

    def platform(self) -> PlatformConfig:
        """platform.yaml, re-read when it changes; a bad file keeps the last good one."""
        if self._live is None:
            self._live = LiveConfig(self.platform_config_path, self.log)
        return self._live.current()

    # ---------------------------------------------------------------- usage

    # Where clusters are kept differs by backend; these two say it. The database backends
    # (local, system users) keep records with name, username, config and count (the target
    # worker count); the Kubernetes backend overrides them (platform_tools.gateway.kubernetes).

    def _active_clusters(self) -> list[Any]:
        return list(self.db.active_clusters())

    def _live_cluster(self, cluster_name: str) -> Any | None:
        """The cluster named, if it is not being stopped; None otherwise."""
        cluster = self.db.get_cluster(cluster_name)
        return cluster if cluster is not None and cluster.target <= JobStatus.RUNNING else None

    def _user_clusters(self, username: str, exclude: str | None = None) -> list[Any]:
        return [
            cluster
            for cluster in self._active_clusters()
            if cluster.username == username and cluster.name != exclude
        ]

    def _user_usage(self, username: str, exclude: str | None = None) -> tuple[int, float, float]:
        """(clusters, cores, memory GiB) the user's clusters are scaled to.

        Counts each cluster's target worker count, as upstream's per-cluster limit does:
        workers retiring after a scale-down no longer count (they are still charged by
        the meter until they stop).
        """
        clusters = self._user_clusters(username, exclude)
        cores = memory = 0.0
        for cluster in clusters:
            c, m = cluster_size(cluster.config, cluster.count)
            cores += c
            memory += m
        return len(clusters), cores, memory

    def _room(self, cluster: Any) -> int | None:
        """Workers of ``cluster`` that fit beside the owner's other clusters; None: no limit."""
        quota = resolve(self.platform(), cluster.username).quota
        _, cores, memory = self._user_usage(cluster.username, exclude=cluster.name)
        return workers_that_fit(
            cluster.config,
            None if quota.max_dask_cores is None else quota.max_dask_cores - cores,
            None if quota.max_dask_memory_gib is None else quota.max_dask_memory_gib - memory,
        )

    # ------------------------------------------------------------ the hooks

    async def start_cluster(self, user: User, cluster_options: dict) -> str:
        quota = resolve(self.platform(), user.name).quota
        count, cores, memory = self._user_usage(user.name)
        if quota.max_dask_clusters is not None and count >= quota.max_dask_clusters:
            raise ClusterRefused(
                f"You already have {count} Dask cluster(s) running, the most your quota allows "
                f"({quota.max_dask_clusters}). Shut one down (cluster.shutdown()) and try again."
            )
        self._check_budget(user.name)
        _, config = await self.process_cluster_options(user, cluster_options)
        cores_left = None if quota.max_dask_cores is None else quota.max_dask_cores - cores
        memory_left = None if quota.max_dask_memory_gib is None else quota.max_dask_memory_gib - memory
        no_cores = cores_left is not None and cores_left < config.scheduler_cores
        no_memory = memory_left is not None and memory_left < config.scheduler_memory / GIB
        if no_cores or no_memory:
            raise ClusterRefused(
                f"Your Dask clusters already use {cores:g} of {_limit(quota.max_dask_cores)} cores and "
                f"{memory:g} of {_limit(quota.max_dask_memory_gib)} GiB (your quota, summed over all "
                "your clusters): a new cluster does not fit. Scale another one down first."
            )
        fit = workers_that_fit(config.to_dict(), cores_left, memory_left)
        name = await super().start_cluster(user, cluster_options)
        self.log.info("Created cluster %s for user %s (room for %s workers)", name, user.name, fit)
        return name

    async def on_cluster_heartbeat(self, cluster_name: str, msg: dict) -> None:
        cluster = self._live_cluster(cluster_name)
        if cluster is not None:
            fit = self._room(cluster)
            if fit is not None and msg["count"] > fit:
                self.log.info(
                    "Cluster %s of %s asked for %d workers; %d fit within the user's aggregate quota",
                    cluster_name,
                    cluster.username,
                    msg["count"],
                    fit,
                )
                msg = {**msg, "count": fit}
        await super().on_cluster_heartbeat(cluster_name, msg)

    def _check_budget(self, username: str) -> None:
        """Ask the accounting service; apply the configured policy if it does not answer."""
        platform = self.platform()
        if not platform.accounting.enabled or not self.accounting_url:
            return
        url = accounting_api(self.accounting_url, AccountingPath.CHECK_CLUSTER)
        request = urllib.request.Request(
            f"{url}?{urlencode({'user': username})}",
            headers=authorization(self.accounting_token),
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                verdict = json.loads(answer.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                self.log.error("accounting answered HTTP %s to a budget check: %s", exc.code, exc)
            policy = resolve(platform, username)
            if policy.budget is not None and platform.accounting.when_unavailable.budgets == "closed":
                raise ClusterRefused(
                    "The accounting service does not answer, and new clusters need it to check your "
                    f"budget. Try again in a minute, or contact {platform.accounting.contact}."
                ) from exc
            self.log.warning("accounting unreachable (%s); allowing a cluster for %s", exc, username)
            return
        if not verdict.get("allowed", False):
            raise ClusterRefused(verdict.get("message", "refused by the accounting service"))

    # ------------------------------------------------- the accounting routes

    async def setup(self, app: web.Application) -> None:
        await super().setup(app)
        self.add_parhelion_routes(app)

    def add_parhelion_routes(self, app: web.Application) -> None:
        """The routes the accounting service (usage, stop) and burst clients (room) call."""
        app.router.add_get(GatewayPath.USAGE, self._usage_route)
        app.router.add_post(GatewayPath.STOP_ROUTE, self._stop_route)
        app.router.add_get(
            GatewayPath.ROOM_ROUTE,
            api_handler(self._room_route, user_authenticated=True),
        )

    async def _room_route(self, request: web.Request) -> web.Response:
        """How many workers this cluster of the caller's may have, beside their other clusters.

        Lets a client (``platform_tools.burst``) size a cluster within the quota before work
        begins, instead of asking for more and waiting for workers that never come.
        """
        cluster = self._live_cluster(request.match_info["cluster_name"])
        if cluster is None or cluster.username != request["user"].name:
            raise web.HTTPNotFound(reason="no such cluster of yours")
        quota = resolve(self.platform(), cluster.username).quota
        clusters, cores, memory = self._user_usage(cluster.username, exclude=cluster.name)
        fit = self._room(cluster)
        per_cluster = self.platform().dask_gateway.max_workers_per_cluster
        return web.json_response(
            {
                "workers": per_cluster if fit is None else min(fit, per_cluster),
                "worker_cores": cluster.config["worker_cores"],
                "worker_memory_gib": cluster.config["worker_memory"] / GIB,
                "other_clusters": {"count": clusters, "cores": cores, "memory_gib": memory},
                "quota": {
                    "max_dask_cores": quota.max_dask_cores,
                    "max_dask_memory_gib": quota.max_dask_memory_gib,
                },
            }
        )

    def _authorized(self, request: web.Request) -> bool:
        return token_matches(request.headers.get("Authorization"), self.accounting_token)

    async def _usage_route(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            raise web.HTTPForbidden(reason="the accounting token is required")
        clusters = []
        for cluster in self.db.active_clusters():
            config = cluster.config
            clusters.append(
                {
                    "name": cluster.name,
                    "username": cluster.username,
                    "start_time": cluster.start_time / 1000,
                    "scheduler": {
                        "cores": config["scheduler_cores"],
                        "memory_gib": config["scheduler_memory"] / GIB,
                    },
                    "workers": [
                        {
                            "name": worker.name,
                            "start_time": worker.start_time / 1000,
                            "cores": config["worker_cores"],
                            "memory_gib": config["worker_memory"] / GIB,
                        }
                        for worker in cluster.active_workers()
                    ],
                }
            )
        return web.json_response({"clusters": clusters})

    async def _stop_route(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            raise web.HTTPForbidden(reason="the accounting token is required")
        username = request.match_info["username"]
        stopped = []
        for cluster in self._user_clusters(username):
            await self.stop_cluster(cluster.name)
            stopped.append(cluster.name)
        return web.json_response({"stopped": stopped})


class ParhelionLocalBackend(AggregateLimitsMixin, UnsafeLocalBackend):
    """Clusters run as the gateway's own OS user, with Parhelion's aggregate limits."""


class ParhelionSystemUsersBackend(AggregateLimitsMixin, LocalBackend):
    """Clusters run as each user's OS account, with Parhelion's aggregate limits."""


def _limit(value: float | None) -> str:
    return "unlimited" if value is None else f"{value:g}"
