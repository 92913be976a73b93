"""Per-user aggregate limits for dask-gateway, which upstream only bounds per cluster.

``max_dask_clusters``, ``max_dask_cores`` and ``max_dask_memory_gib`` count ALL of a
user's clusters together (one Pangeo user once had 8,766 worker pods from an unbounded
adapt()). Two places enforce them:

* ``start_cluster``: a new cluster is refused, with a message the client shows, when the
  user already runs ``max_dask_clusters``, or when even its scheduler would not fit in
  what is left of the cores or memory, or when the budget says no;
* ``on_cluster_heartbeat``: the number of workers a scheduler asks for (``scale`` or
  ``adapt``) is clamped to what fits next to the user's other clusters.

The rule that makes them hold under concurrency (ten ``new_cluster()`` at once, two clusters
scaled at once): every decision for a user - the count, the fit, and the write that makes it
true (the cluster's creation, the new worker count) - runs under that user's lock, so no two
decisions read the same usage. Usage counts what is asked for AND what still exists, whichever
is larger, per cluster: its scheduler while the cluster is active or its scheduler still runs,
and max(target workers, workers not yet stopped). Workers retiring after a scale-down, and the
processes or pods of a cluster being shut down, keep counting until they are gone, so the
limits are never exceeded, even for a moment, by what the gateway grants. Where the backend
sees its own writes late (Kubernetes: an informer), what was granted and is not yet visible is
held as a reservation (platform_tools.gateway.kubernetes). The number of clusters
(``max_dask_clusters``) counts the active ones only: a cluster being shut down no longer
counts as one of the user's clusters, though its cores still do until they are free.

The budget check is an asynchronous call with a timeout, so a slow accounting service
delays only the new cluster that asks, never the gateway's other requests.

The backend also serves the accounting service: a private route lists every running
cluster and worker with its size (the meter), and stops a user's clusters (the
enforcer). Both need the accounting token.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.db_base import JobStatus
from dask_gateway_server.backends.local import LocalBackend, UnsafeLocalBackend, is_running
from dask_gateway_server.models import User
from dask_gateway_server.routes import api_handler
from traitlets import Float, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from platform_tools.config import PlatformConfig
from platform_tools.config.live import LiveConfig
from platform_tools.config.policy import resolve
from platform_tools.contract.services import AccountingPath, GatewayPath, accounting_api
from platform_tools.contract.tokens import authorization, token_matches
from platform_tools.gateway.dashboards import DashboardGateMixin
from platform_tools.gateway.groups import ProcessGroupsMixin
from platform_tools.gateway.systemusers import SystemUsersMixin

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


@dataclass(frozen=True)
class ClusterUsage:
    """What one cluster takes from its owner's limits (the rule: see the module's docstring).

    ``workers``: max(target workers, workers not yet stopped); ``scheduler``: its scheduler
    counts (the cluster is active or its scheduler still runs); ``active``: it counts as one
    of the user's clusters (not being shut down).
    """

    name: str
    username: str
    config: Any
    workers: int
    scheduler: bool = True
    active: bool = True


class BudgetUnanswered(Exception):
    """The accounting service gave no verdict (down, slow, or an error status)."""


class AggregateLimitsMixin(LoggingConfigurable):
    """Aggregate per-user limits for a DB-backed dask-gateway backend (mixed in first)."""

    platform_config_path = Unicode(
        os.environ.get("PARHELION_CONFIG", ""), help="platform.yaml, re-read when it changes.", config=True
    )
    accounting_url = Unicode(
        "", help="The accounting service's origin, as registered with the hub (no prefix).", config=True
    )
    accounting_token = Unicode("", help="Token for the accounting service and our routes.", config=True)
    accounting_timeout_seconds = Float(
        5.0,
        help="How long a budget check waits for the accounting service before the "
        "accounting.when_unavailable policy applies (as the hub's check does).",
        config=True,
    )

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
    _user_locks: defaultdict[str, asyncio.Lock] | None = None

    # ------------------------------------------------------------- settings

    def platform(self) -> PlatformConfig:
        """platform.yaml, re-read when it changes; a bad file keeps the last good one."""
        if self._live is None:
            self._live = LiveConfig(self.platform_config_path, self.log)
        return self._live.current()

    # ---------------------------------------------------------------- usage

    # Where clusters are kept differs by backend; these methods say it. The database backends
    # (local, system users) keep records with name, username, config, count (the target worker
    # count) and their workers; the Kubernetes backend overrides them
    # (platform_tools.gateway.kubernetes).

    def _active_clusters(self) -> list[Any]:
        return list(self.db.active_clusters())

    def _live_cluster(self, cluster_name: str) -> Any | None:
        """The cluster named, if it is not being stopped; None otherwise."""
        cluster = self.db.get_cluster(cluster_name)
        return cluster if cluster is not None and cluster.target <= JobStatus.RUNNING else None

    def _usage_records(self) -> Iterable[ClusterUsage]:
        """Every cluster that asks for, or still holds, processes (database backends).

        The database is written synchronously by the same event loop that decides, so what
        was granted is visible at once: no reservations are needed here. A retired worker is
        marked stopped only at its scheduler's next heartbeat (up to 15 s later); its process
        is looked at directly, so its cores are free as soon as it has exited.
        """
        for cluster in self.db.name_to_cluster.values():
            if cluster.status >= JobStatus.STOPPED:  # its scheduler and workers are gone
                continue
            active = cluster.target <= JobStatus.RUNNING
            alive = sum(1 for worker in cluster.workers.values() if _worker_alive(worker))
            target = cluster.count if active else 0
            yield ClusterUsage(
                cluster.name, cluster.username, cluster.config, max(target, alive), True, active
            )

    def _granted(self, cluster_name: str, count: int) -> None:
        """Called under the owner's lock before a new worker count is written; a backend that
        sees its writes late remembers it (Kubernetes)."""

    def _reserved(self, cluster_name: str, username: str, config: dict) -> None:
        """Called under the owner's lock once a new cluster was made; a backend that sees its
        writes late counts it until they show (Kubernetes)."""

    def _user_clusters(self, username: str, exclude: str | None = None) -> list[Any]:
        return [
            cluster
            for cluster in self._active_clusters()
            if cluster.username == username and cluster.name != exclude
        ]

    def _user_usage(self, username: str, exclude: str | None = None) -> tuple[int, float, float]:
        """(active clusters, cores, memory GiB) the user's clusters ask for or still hold."""
        count = 0
        cores = memory = 0.0
        for usage in self._usage_records():
            if usage.username != username or usage.name == exclude:
                continue
            count += usage.active
            config = usage.config
            cores += usage.workers * config["worker_cores"] + usage.scheduler * config["scheduler_cores"]
            memory += (
                usage.workers * config["worker_memory"] + usage.scheduler * config["scheduler_memory"]
            ) / GIB
        return count, cores, memory

    def _user_lock(self, username: str) -> asyncio.Lock:
        """The lock every limit decision of this user runs under (a read, then its write)."""
        if self._user_locks is None:
            self._user_locks = defaultdict(asyncio.Lock)
        return self._user_locks[username]

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

    def _refuse_past_count(self, username: str, count: int) -> None:
        quota = resolve(self.platform(), username).quota
        if quota.max_dask_clusters is not None and count >= quota.max_dask_clusters:
            raise ClusterRefused(
                f"You already have {count} Dask cluster(s) running, the most your quota "
                f"allows ({quota.max_dask_clusters}). Shut one down (cluster.shutdown()) and try again."
            )

    async def start_cluster(self, user: User, cluster_options: dict) -> str:
        # early answers without waiting for the lock or the budget check; decided again below
        self._refuse_past_count(user.name, self._user_usage(user.name)[0])
        await self._check_budget(user.name)
        _, config = await self.process_cluster_options(user, cluster_options)
        async with self._user_lock(user.name):
            quota = resolve(self.platform(), user.name).quota
            count, cores, memory = self._user_usage(user.name)
            self._refuse_past_count(user.name, count)
            cores_left = None if quota.max_dask_cores is None else quota.max_dask_cores - cores
            memory_left = None if quota.max_dask_memory_gib is None else quota.max_dask_memory_gib - memory
            no_cores = cores_left is not None and cores_left < config.scheduler_cores
            no_memory = memory_left is not None and memory_left < config.scheduler_memory / GIB
            if no_cores or no_memory:
                raise ClusterRefused(
                    f"Your Dask clusters already use {cores:g} of {_limit(quota.max_dask_cores)} cores and "
                    f"{memory:g} of {_limit(quota.max_dask_memory_gib)} GiB (your quota, summed over all "
                    "your clusters, including workers and clusters still shutting down): a new cluster "
                    "does not fit. Scale another one down, or wait for it to stop, first."
                )
            fit = workers_that_fit(config.to_dict(), cores_left, memory_left)
            name = await super().start_cluster(user, cluster_options)
            self._reserved(name, user.name, config.to_dict())
        self.log.info("Created cluster %s for user %s (room for %s workers)", name, user.name, fit)
        return name

    async def on_cluster_heartbeat(self, cluster_name: str, msg: dict) -> None:
        cluster = self._live_cluster(cluster_name)
        if cluster is None:
            await super().on_cluster_heartbeat(cluster_name, msg)
            return
        async with self._user_lock(cluster.username):
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
            per_cluster = cluster.config.get("cluster_max_workers")
            count = msg["count"] if per_cluster is None else min(msg["count"], per_cluster)
            self._granted(cluster_name, count)
            await super().on_cluster_heartbeat(cluster_name, msg)

    async def _check_budget(self, username: str) -> None:
        """Ask the accounting service; apply the configured policy if it does not answer.

        Asynchronous, with ``accounting_timeout_seconds``: the gateway keeps serving other
        requests (heartbeats, other users) while it waits.
        """
        platform = self.platform()
        if not platform.accounting.enabled or not self.accounting_url:
            return
        url = accounting_api(self.accounting_url, AccountingPath.CHECK_CLUSTER)
        try:
            verdict = await self._budget_verdict(url, username)
        except (TimeoutError, aiohttp.ClientError, ValueError, BudgetUnanswered) as exc:
            reason = str(exc) or type(exc).__name__
            policy = resolve(platform, username)
            if policy.budget is not None and platform.accounting.when_unavailable.budgets == "closed":
                self.log.error("accounting gave no budget verdict for %s (%s): refusing", username, reason)
                raise ClusterRefused(
                    "The accounting service does not answer, and new clusters need it to check your "
                    f"budget. Try again in a minute, or contact {platform.accounting.contact}."
                ) from exc
            self.log.warning("accounting gave no verdict (%s); allowing a cluster for %s", reason, username)
            return
        if not verdict.get("allowed", False):
            raise ClusterRefused(verdict.get("message", "refused by the accounting service"))

    async def _budget_verdict(self, url: str, username: str) -> dict:
        timeout = aiohttp.ClientTimeout(total=self.accounting_timeout_seconds)
        async with self.session.get(
            url, params={"user": username}, headers=authorization(self.accounting_token), timeout=timeout
        ) as answer:
            if answer.status != 200:
                raise BudgetUnanswered(f"HTTP {answer.status} to a budget check")
            verdict = await answer.json(content_type=None)
        if not isinstance(verdict, dict):
            raise BudgetUnanswered("a budget check's answer is not a JSON object")
        return verdict

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
                        # what still runs: a retiring worker until its process exits (it is
                        # charged), an exited one at once (the gateway's records lag a heartbeat)
                        for worker in cluster.workers.values()
                        if _worker_alive(worker)
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


class ParhelionLocalBackend(DashboardGateMixin, AggregateLimitsMixin, ProcessGroupsMixin, UnsafeLocalBackend):
    """Clusters run as the gateway's own OS user, with Parhelion's aggregate limits; each
    process limited and stopped whole (``gateway.groups``); dashboards for their owners only
    (``gateway.dashboards``)."""


class ParhelionSystemUsersBackend(
    DashboardGateMixin, SystemUsersMixin, AggregateLimitsMixin, ProcessGroupsMixin, LocalBackend
):
    """Clusters run as each user's own account (``gateway.systemusers``), with Parhelion's
    aggregate limits; each process limited and stopped whole (``gateway.groups``); dashboards
    for their owners only (``gateway.dashboards``)."""


def _worker_alive(worker: Any) -> bool:
    """A worker not yet stopped, unless its process (a local backend's pid) has exited."""
    if worker.status >= JobStatus.STOPPED:
        return False
    pid = (worker.state or {}).get("pid")
    try:
        return pid is None or is_running(pid)
    except OSError:  # not ours to signal (another account's): it exists
        return True


def _limit(value: float | None) -> str:
    return "unlimited" if value is None else f"{value:g}"
