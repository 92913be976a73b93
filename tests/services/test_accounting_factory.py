"""The accounting service assembled by its one factory, for both backends.

Settings come from the local runtime or the pod's environment; the factory joins them to the
backend's ``Sources`` (both implement the protocol) and, for classes, to its sessions.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from platform_tools.accounting.kubernetes_sources import KubernetesSources
from platform_tools.accounting.local_sources import LocalSources
from platform_tools.accounting.sources import Sources
from platform_tools.contract.services import ACCOUNTING_PREFIX
from platform_tools.local.runtime import LocalRuntime, Ports
from platform_tools.local.statedir import StateDir
from platform_tools.services.accounting.factory import (
    AccountingFactory,
    Settings,
    SettingsError,
    kubernetes_accounting,
    local_accounting,
)
from tests.platform import REPO_ROOT

pytestmark = pytest.mark.unit

PLATFORM = (REPO_ROOT / "hub_config" / "platform.local.yaml").read_text()


def kube_environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    config = tmp_path / "platform.yaml"
    config.write_text(PLATFORM)
    return {
        "PARHELION_CONFIG": str(config),
        "JUPYTERHUB_API_TOKEN": "hub-token",
        "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "PARHELION_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        **extra,
    }


def test_both_backends_sources_implement_the_protocol(tmp_path):
    factory = AccountingFactory(Settings.kubernetes(kube_environ(tmp_path)))
    kubernetes = factory.kubernetes_sources("parhelion")
    local = factory.local_sources(lambda config: {})
    assert isinstance(kubernetes, KubernetesSources) and isinstance(kubernetes, Sources)
    assert isinstance(local, LocalSources) and isinstance(local, Sources)


def test_kubernetes_settings_come_from_the_pods_environment(tmp_path):
    environ = kube_environ(
        tmp_path,
        PARHELION_GATEWAY_URL="http://traefik-parhelion-dask-gateway",
        PARHELION_PLACEHOLDERS="parhelion-placeholder",
        PARHELION_NAMESPACE="school",
    )

    async def build():
        return kubernetes_accounting(environ)

    accounting, settings = asyncio.run(build())
    assert (settings.address, settings.port, settings.prefix) == ("0.0.0.0", 8080, ACCOUNTING_PREFIX)
    assert settings.gateway_url == "http://traefik-parhelion-dask-gateway"
    assert accounting.internal_token == "hub-token"
    assert isinstance(accounting.sources, KubernetesSources) and accounting.sources.namespace == "school"
    assert accounting.sessions is not None  # placeholders prewarm classes
    assert Path(tmp_path / "ledger.sqlite").exists()  # migrated at assembly
    accounting.ledger.close()


def test_without_placeholders_no_sessions_run_on_kubernetes(tmp_path):
    async def build():
        return kubernetes_accounting(kube_environ(tmp_path))

    accounting, settings = asyncio.run(build())
    assert accounting.sessions is None and settings.gateway_url is None
    accounting.ledger.close()


@pytest.mark.parametrize("missing", ["JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", "PARHELION_CONFIG"])
def test_a_missing_setting_is_named(tmp_path, missing):
    environ = kube_environ(tmp_path)
    del environ[missing]
    with pytest.raises(SettingsError, match=missing):
        Settings.kubernetes(environ)


def test_no_database_anywhere_is_a_clear_error(tmp_path):
    environ = kube_environ(tmp_path)
    del environ["PARHELION_DATABASE_URL"]
    with pytest.raises(SettingsError, match="accounting.database_url"):
        AccountingFactory(Settings.kubernetes(environ)).ledger()


def test_the_local_service_is_assembled_from_the_runtime(tmp_path, monkeypatch):
    state = StateDir(tmp_path / "state")
    state.prepare()
    state.platform_file.write_text(PLATFORM)
    runtime = LocalRuntime(
        state_dir=str(state.root),
        hub_config_dir="",
        notebooks_dir=str(tmp_path),
        proxy_command="",
        public_host="127.0.0.1",
        ports=Ports(8000, 8081, 8001, 8002, 8003, 8004, 8005),
    )
    runtime.save(state.runtime_file)
    monkeypatch.setenv("PARHELION_RUNTIME", str(state.runtime_file))

    async def build():
        return local_accounting({"JUPYTERHUB_API_TOKEN": "managed-token"})

    accounting, settings = asyncio.run(build())
    assert (settings.address, settings.port) == ("127.0.0.1", 8005)
    assert settings.hub_token == "managed-token"
    assert accounting.internal_token == state.secret("accounting-api-token")[0]
    assert isinstance(accounting.sources, LocalSources)
    assert accounting.sources.gateway_url == runtime.gateway_url
    assert accounting.sessions is not None
    assert (state.root / "accounting.sqlite").exists()
    accounting.ledger.close()
