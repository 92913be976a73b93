"""`parhelion-accounting`: the JupyterHub service that meters, records and enforces.

Runs as a hub service (managed by the hub locally; its own Deployment on Kubernetes).
People reach it through the hub with HubOAuth: the spend page, the admin view and the
JSON API (a user sees only their own; admins see all). The hub's pre-spawn hook and the
gateway ask it ``/api/v1/check/...`` with an internal token; Prometheus scrapes
``/metrics`` with the same token. Two loops run inside: the meter (every
``sample_interval_seconds``) and the enforcer (every ``enforce_interval_seconds``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from ..classes.sessions import SessionScheduler
from ..config.live import LiveConfig
from ..local.runtime import GATEWAY_PREFIX, LocalRuntime
from ..local.statedir import StateDir
from .enforcer import Actions, Enforcer
from .handlers import handlers
from .ledger import Ledger
from .meter import LocalSources, SourceError
from .metrics import Metrics
from .prices import LiveCatalog, catalog_path

log = logging.getLogger("parhelion.accounting")

SERVICE_NAME = "accounting"


class Accounting:
    """The service's state: configuration, ledger, meter, enforcer, metrics."""

    def __init__(
        self,
        live: LiveConfig,
        ledger: Ledger,
        sources: LocalSources,
        actions: Actions,
        internal_token: str,
        prefix: str,
    ):
        self.live = live
        self.ledger = ledger
        self.sources = sources
        self.enforcer = Enforcer(ledger, actions, live.current)
        self.internal_token = internal_token
        self.prefix = prefix
        self.metrics = Metrics()
        self.sessions: SessionScheduler | None = None  # classes prewarmed before each session

    async def sample(self) -> None:
        try:
            observations = await self.sources.observe()
        except SourceError as exc:
            self.metrics.sample_failures.inc()
            log.warning("sample skipped: %s", exc)
            return
        at = datetime.now(UTC).timestamp()
        self.ledger.record_sample(at, observations)
        self.metrics.samples.inc()
        self.metrics.update_spend(self.live.current(), self.ledger)

    async def loop(self, every: str, action) -> None:
        """``action`` at the interval the live config's ``accounting.<every>`` says now."""
        await repeat(action, lambda: getattr(self.live.current().accounting, every))


async def repeat(action, seconds) -> None:
    """Run ``action`` for ever, ``seconds()`` apart; a failure is logged, not fatal."""
    while True:
        try:
            await action()
        except Exception:
            log.exception("%s failed", getattr(action, "__qualname__", action))
        await asyncio.sleep(seconds())


def local_actions(runtime: LocalRuntime, hub_token: str, internal_token: str) -> Actions:
    return hub_actions(
        runtime.hub_api_url, f"{runtime.gateway_url}{GATEWAY_PREFIX}", hub_token, internal_token
    )


def hub_actions(hub_api_url: str, gateway_url: str | None, hub_token: str, internal_token: str) -> Actions:
    """Stop servers through the hub's API and clusters through the gateway's route."""
    client = AsyncHTTPClient()

    async def stop_servers(username: str) -> list[str]:
        request = HTTPRequest(
            f"{hub_api_url}/users/{username}", headers={"Authorization": f"token {hub_token}"}
        )
        user = json.loads((await client.fetch(request)).body)
        stopped = []
        for name in user.get("servers") or {}:
            path = (
                f"{hub_api_url}/users/{username}/servers/{name}"
                if name
                else f"{hub_api_url}/users/{username}/server"
            )
            await client.fetch(
                HTTPRequest(path, method="DELETE", headers={"Authorization": f"token {hub_token}"}),
                raise_error=False,
            )
            stopped.append(f"server {name or '(default)'}")
        return stopped

    async def stop_clusters(username: str) -> list[str]:
        if gateway_url is None:
            return []
        request = HTTPRequest(
            f"{gateway_url}/api/v1/parhelion/users/{username}/stop",
            method="POST",
            body=b"",
            headers={"Authorization": f"token {internal_token}"},
        )
        try:
            answer = json.loads((await client.fetch(request)).body)
        except Exception as exc:
            log.warning("could not stop the clusters of %s: %s", username, exc)
            return []
        return [f"cluster {name[:8]}" for name in answer.get("stopped", [])]

    return Actions(stop_servers, stop_clusters)


def make_app(accounting: Accounting) -> web.Application:
    return web.Application(
        handlers(accounting.prefix),
        accounting=accounting,
        cookie_secret=os.urandom(32),
        xsrf_cookies=False,
        template_path=str(Path(__file__).with_name("templates")),
    )


async def run_local() -> None:
    """Start as the local platform's managed hub service."""
    runtime = LocalRuntime.from_environment()
    state = StateDir(runtime.state_dir)
    live = LiveConfig(state.platform_file, log)
    config = live.current()
    ledger = Ledger(config.accounting.database_url or f"sqlite:///{state.root / 'accounting.sqlite'}")
    ledger.migrate()
    hub_token = os.environ["JUPYTERHUB_API_TOKEN"]
    internal_token = state.secret("accounting-api-token")[0]
    sources = LocalSources(
        hub_api_url=runtime.hub_api_url,
        hub_token=hub_token,
        gateway_usage_url=(
            f"{runtime.gateway_url}{GATEWAY_PREFIX}/api/v1/parhelion/usage"
            if config.dask_gateway.enabled
            else None
        ),
        accounting_token=internal_token,
        homes=state.homes,
        catalog=LiveCatalog(
            lambda: catalog_path(live.current().accounting.price_catalog, state.root), log
        ).current,
        config=live.current,
    )
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")
    accounting = Accounting(
        live, ledger, sources, local_actions(runtime, hub_token, internal_token), internal_token, prefix
    )

    async def prewarm(config, name: str) -> None:
        from ..classes.lifecycle import prewarm_local

        await prewarm_local(state, name, Path(runtime.notebooks_dir))

    accounting.sessions = SessionScheduler(live.current, prewarm)
    await serve(accounting, runtime.ports.accounting, "127.0.0.1")


async def serve(accounting: Accounting, port: int, address: str) -> None:
    """The web app and the meter and enforcer loops, until SIGINT or SIGTERM."""
    app = make_app(accounting)
    app.listen(port, address=address)
    log.info("accounting listening on %s:%s%s", address, port, accounting.prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [
        asyncio.create_task(accounting.loop("sample_interval_seconds", accounting.sample)),
        asyncio.create_task(accounting.loop("enforce_interval_seconds", accounting.enforcer.run_once)),
    ]
    if accounting.sessions is not None:
        tasks.append(asyncio.create_task(repeat(accounting.sessions.run_once, lambda: SESSION_CHECK_SECONDS)))
    await stop.wait()
    for task in tasks:
        task.cancel()
    accounting.ledger.close()


SESSION_CHECK_SECONDS = 30.0


def placeholder_actions(namespace: str, statefulset: str):
    """Scale the chart's placeholders for a class (prewarm) and back to none (release)."""
    from kubernetes_asyncio import client
    from kubernetes_asyncio import config as kube_config

    from ..classes.placeholders import Placeholders, scale_placeholders

    async def scale(config, name: str, release: bool) -> None:
        kube_config.load_incluster_config()
        wanted = Placeholders.for_class(config, name, release=release)
        async with client.ApiClient() as api:
            await scale_placeholders(client.AppsV1Api(api), namespace, statefulset, wanted)

    async def prewarm(config, name: str) -> None:
        await scale(config, name, release=False)

    async def release(config, name: str) -> None:
        await scale(config, name, release=True)

    return prewarm, release


async def run_kubernetes() -> None:
    """Start as its own Deployment: settings from the environment the chart gives it."""
    from .k8s import KubernetesSources

    live = LiveConfig(os.environ["PARHELION_CONFIG"], log)
    ledger = Ledger(os.environ.get("PARHELION_DATABASE_URL") or live.current().accounting.database_url)
    ledger.migrate()
    token = os.environ["JUPYTERHUB_API_TOKEN"]  # registered with the hub; also guards the check routes
    catalog = LiveCatalog(lambda: catalog_path(live.current().accounting.price_catalog, Path("/")), log)
    sources = KubernetesSources(os.environ.get("PARHELION_NAMESPACE", "default"), catalog.current)
    actions = hub_actions(
        os.environ["JUPYTERHUB_API_URL"], os.environ.get("PARHELION_GATEWAY_URL") or None, token, token
    )
    accounting = Accounting(live, ledger, sources, actions, token, f"/services/{SERVICE_NAME}/")
    placeholders = os.environ.get("PARHELION_PLACEHOLDERS")
    if placeholders:
        prewarm, release = placeholder_actions(os.environ.get("PARHELION_NAMESPACE", "default"), placeholders)
        accounting.sessions = SessionScheduler(live.current, prewarm, release)
    await serve(accounting, int(os.environ.get("PARHELION_ACCOUNTING_PORT", "8080")), "0.0.0.0")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s accounting %(levelname)s %(message)s", stream=sys.stdout
    )
    argv = sys.argv[1:] if argv is None else argv
    asyncio.run(run_kubernetes() if argv == ["--kubernetes"] else run_local())
    return 0


if __name__ == "__main__":
    sys.exit(main())
