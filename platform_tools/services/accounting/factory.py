"""One factory assembles the accounting service, for either backend.

The two backends differ only in where their settings come from (the local runtime and
state directory, or the environment the chart gives the pod), in the ``Sources`` the meter
reads (``LocalSources`` or ``KubernetesSources``) and in how a class is prewarmed (hub users
and homes, or the chart's placeholders). Everything else — the live configuration, the
ledger, the price catalog, the enforcer's actions, the web app — is built here once, the
way phalanx's factories build a service's dependencies from its settings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from platform_tools.accounting.kubernetes_sources import KubernetesSources
from platform_tools.accounting.local_sources import LocalSources
from platform_tools.accounting.sources import Sources
from platform_tools.accounting.storage import StorageGauge, local_homes
from platform_tools.classes.lifecycle import prewarm_local
from platform_tools.classes.materials import PullRounds
from platform_tools.classes.sessions import SessionScheduler
from platform_tools.config import PlatformConfig
from platform_tools.config.live import LiveConfig
from platform_tools.contract.services import (
    ACCOUNTING_PREFIX,
    ACCOUNTING_SERVICE,
    external_service_oauth,
    gateway_api,
)
from platform_tools.ledger.recovery import Recovery, open_ledger
from platform_tools.ledger.store import Ledger
from platform_tools.local.homes import user_homes
from platform_tools.local.runtime import HOST, LocalRuntime
from platform_tools.local.statedir import StateDir
from platform_tools.pricing.catalog import LiveCatalog, catalog_path
from platform_tools.services.accounting.actions import hub_actions, placeholder_actions
from platform_tools.services.accounting.app import Accounting, serve

log = logging.getLogger("parhelion.accounting")

#: The event action (user ``*``) that tells admins a corrupt ledger was replaced at start.
LEDGER_RECOVERED = "ledger-recovered"


class SettingsError(RuntimeError):
    """A setting the service cannot start without, named."""


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name)
    if not value:
        raise SettingsError(f"{name} is not set: the chart's accounting Deployment sets it")
    return value


@dataclass(frozen=True)
class Settings:
    """What the service reads and talks to, and where it listens."""

    config_path: Path
    state_root: Path  # a relative accounting.price_catalog is found here
    database_url: str | None  # over platform.yaml's accounting.database_url when set
    default_database_url: str | None  # when neither says
    hub_api_url: str
    hub_token: str  # the service's own hub token
    internal_token: str  # what the hub and gateway send to the checks, and we to the gateway
    gateway_url: str | None  # the gateway proxy's origin, to stop clusters (None: gateway off)
    address: str
    port: int
    prefix: str = ACCOUNTING_PREFIX

    def __post_init__(self) -> None:
        if self.gateway_url:
            try:
                gateway_api(self.gateway_url, "")
            except ValueError as error:
                raise SettingsError(f"PARHELION_GATEWAY_URL: {error}") from None

    @classmethod
    def local(
        cls, runtime: LocalRuntime, state: StateDir, environ: Mapping[str, str] = os.environ
    ) -> Settings:
        """As `parhelion up` starts it (services/local.py): registered with the hub as an
        external service, given its hub token and prefix as the hub would give them."""
        return cls(
            config_path=state.platform_file,
            state_root=state.root,
            database_url=None,
            default_database_url=f"sqlite:///{state.root / 'accounting.sqlite'}",
            hub_api_url=runtime.hub_api_url,
            hub_token=environ["JUPYTERHUB_API_TOKEN"],
            internal_token=state.secret("accounting-api-token")[0],
            gateway_url=runtime.gateway_url,
            address=HOST,
            port=runtime.ports.accounting,
            prefix=environ.get("JUPYTERHUB_SERVICE_PREFIX", ACCOUNTING_PREFIX),
        )

    @classmethod
    def kubernetes(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """From the environment the chart's Deployment gives the pod."""
        token = _required(environ, "JUPYTERHUB_API_TOKEN")  # registered with the hub; guards the checks
        return cls(
            config_path=Path(_required(environ, "PARHELION_CONFIG")),
            state_root=Path("/"),
            database_url=environ.get("PARHELION_DATABASE_URL") or None,
            default_database_url=None,
            hub_api_url=_required(environ, "JUPYTERHUB_API_URL"),
            hub_token=token,
            internal_token=token,
            gateway_url=environ.get("PARHELION_GATEWAY_URL") or None,
            address="0.0.0.0",
            port=int(environ.get("PARHELION_ACCOUNTING_PORT", "8080")),
        )


class AccountingFactory:
    """Builds the service's parts from ``Settings``; ``create`` joins them to a backend's sources."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.live = LiveConfig(settings.config_path, log)
        self.recovery: Recovery | None = None  # set when ledger() moved a corrupt one aside

    def ledger(self) -> Ledger:
        """The ledger, migrated to the current schema.

        Never a crash loop over the ledger (while the service is down nothing is metered or
        stopped): a corrupt SQLite file is moved aside and what it holds salvaged into a fresh
        one, recorded as a ``ledger-recovered`` event for user ``*`` and logged as one ERROR; a
        database server that does not answer is waited for, with backoff (``ledger.recovery``).
        """
        url = (
            self.settings.database_url
            or self.live.current().accounting.database_url
            or self.settings.default_database_url
        )
        if not url:
            raise SettingsError("no ledger database: set accounting.database_url or PARHELION_DATABASE_URL")
        ledger, self.recovery = open_ledger(url, log)
        if self.recovery is not None:
            summary = self.recovery.summary()
            log.error("%s", summary)
            ledger.record_event("*", LEDGER_RECOVERED, "ledger-corrupt", summary)
        return ledger

    def catalog(self) -> LiveCatalog:
        root = self.settings.state_root
        return LiveCatalog(lambda: catalog_path(self.live.current().accounting.price_catalog, root), log)

    def local_sources(self, homes: Callable[[PlatformConfig], Mapping[str, Path]]) -> LocalSources:
        settings = self.settings
        return LocalSources(
            hub_api_url=settings.hub_api_url,
            hub_token=settings.hub_token,
            gateway_url=settings.gateway_url if self.live.current().dask_gateway.enabled else None,
            accounting_token=settings.internal_token,
            homes=homes,
            catalog=self.catalog().current,
            config=self.live.current,
        )

    def kubernetes_sources(self, namespace: str) -> KubernetesSources:
        return KubernetesSources(namespace, self.catalog().current)

    def storage_gauge(self, state_homes: Path, spawner_of: Callable[[PlatformConfig], str]) -> StorageGauge:
        """One machine's homes, wherever the running spawner puts them, against the storage quota."""
        return StorageGauge(
            lambda config: local_homes(config, state_homes, spawner_of(config)), self.live.current
        )

    def create(
        self,
        sources: Sources,
        sessions: SessionScheduler | None = None,
        storage: StorageGauge | None = None,
    ) -> Accounting:
        settings = self.settings
        actions = hub_actions(
            settings.hub_api_url, settings.gateway_url, settings.hub_token, settings.internal_token
        )
        accounting = Accounting(
            self.live,
            self.ledger(),
            sources,
            actions,
            settings.internal_token,
            settings.prefix,
            sessions,
            storage,
        )
        if self.recovery is not None:
            accounting.metrics.ledger_recoveries.inc()
            for table, rows in self.recovery.salvaged.items():
                accounting.metrics.ledger_rows_salvaged.labels(table).set(rows)
        return accounting


def local_accounting(environ: Mapping[str, str] = os.environ) -> tuple[Accounting, Settings]:
    """The service of the local platform this process belongs to."""
    runtime = LocalRuntime.from_environment()
    state = StateDir(runtime.state_dir)
    factory = AccountingFactory(Settings.local(runtime, state, environ))

    rounds = PullRounds()

    async def prewarm(config, name: str) -> None:
        """Users, homes, and the course's materials: every student at a window's first tick,
        then only those a round missed (classes.materials.PullRounds)."""
        group = config.groups[name]
        window = 60.0 * group.course.prewarm_minutes
        students = rounds.who(name, group.members, window, time.monotonic())
        done = await prewarm_local(state, name, Path(runtime.notebooks_dir), materials_for=students)
        rounds.record(name, done.materials)

    sessions = SessionScheduler(factory.live.current, prewarm)

    def homes(config: PlatformConfig) -> dict[str, Path]:  # as `parhelion up` decided at start
        return user_homes(config, runtime.spawner_of(config), state.homes)

    sources = factory.local_sources(homes)
    gauge = factory.storage_gauge(state.homes, runtime.spawner_of)
    return factory.create(sources, sessions, gauge), factory.settings


def kubernetes_accounting(environ: Mapping[str, str] = os.environ) -> tuple[Accounting, Settings]:
    """The service as the chart's Deployment runs it."""
    for key, value in external_service_oauth(ACCOUNTING_SERVICE).items():
        os.environ.setdefault(key, value)  # read by HubOAuth when the handlers first need it
    factory = AccountingFactory(Settings.kubernetes(environ))
    namespace = environ.get("PARHELION_NAMESPACE", "default")
    sessions = None
    placeholders = environ.get("PARHELION_PLACEHOLDERS")
    if placeholders:
        prewarm, release = placeholder_actions(namespace, placeholders)
        sessions = SessionScheduler(factory.live.current, prewarm, release)
    return factory.create(factory.kubernetes_sources(namespace), sessions), factory.settings


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s accounting %(levelname)s %(message)s", stream=sys.stdout
    )
    argv = sys.argv[1:] if argv is None else argv
    asyncio.run(run(kubernetes=argv == ["--kubernetes"]))
    return 0


async def run(kubernetes: bool) -> None:
    """Assemble inside the event loop (tornado's HTTP client binds to the running loop)."""
    accounting, settings = kubernetes_accounting() if kubernetes else local_accounting()
    await serve(accounting, settings.port, settings.address)
