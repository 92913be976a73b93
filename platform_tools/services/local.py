"""The local platform's services: how each is started and how readiness is seen.

Order matters and is fixed by ``supervisor``: the S3 archive, then dask-gateway and the
accounting service (the hub stalls ~30 s at start on a registered service whose URL does
not answer), then JupyterHub, then the idle culler, which needs the hub's API.

Every service is started and watched by `parhelion up` itself, none by the hub: JupyterHub
polls the services it manages every 30 s (not configurable), so a killed accounting service
left what runs unmetered for ~30 s, twice the shortest grace a budget may have, and a
killed hub took its managed services with it. The accounting service is registered with
the hub by URL and token, as an external service, exactly as on Kubernetes.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from platform_tools.contract.services import (
    ACCOUNTING_SERVICE,
    AccountingPath,
    GatewayPath,
    accounting_api,
    external_service_oauth,
    gateway_api,
)
from platform_tools.local.runtime import HOST, LocalRuntime
from platform_tools.local.statedir import StateDir
from platform_tools.services.processes import ManagedProcess

#: How `parhelion up` starts the accounting service (`python -m ...`).
ACCOUNTING_MODULE = "platform_tools.services.accounting"


@dataclass
class Service:
    """A process and how to tell it is ready: its URL answers, or (no URL) it keeps running
    for ``ready_timeout`` seconds.

    ``restartable``: the supervisor starts it again when it dies (within its restart budget)
    instead of taking the platform down. Only services whose restart loses nothing are:
    the accounting service (its state is the ledger), the hub (its state is its database;
    it re-adopts the running servers from it) and the stateless idle culler. S3 and the
    gateway are not: a restarted gateway would not know the clusters it ran.
    """

    process: ManagedProcess
    ready_url: str | None
    ready_timeout: float
    ok_statuses: range = range(200, 500)
    restartable: bool = False


def _base_env(runtime: LocalRuntime, state: StateDir) -> dict[str, str]:
    env = dict(os.environ)
    env["PARHELION_RUNTIME"] = str(state.runtime_file)
    env["PARHELION_CONFIG"] = str(state.platform_file)
    env["PARHELION_STATE_DIR"] = str(state.root)
    # The venv's tools first, whichever way `parhelion` was invoked.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("JUPYTERHUB_API_TOKEN", None)  # never leak a token from the caller's shell
    return env


def s3_service(runtime: LocalRuntime, state: StateDir, keyed: bool) -> Service:
    env = _base_env(runtime, state)
    env["RCLONE_CONFIG"] = str(state.root / "rclone.conf")  # none of the user's remotes
    (state.root / "rclone.conf").touch()
    if keyed:
        # In the environment, not argv, so the keys never show in `ps`.
        # rclone reads list-valued variables as CSV: quote the "key,secret" pair.
        env["RCLONE_AUTH_KEY"] = f'"{state.secret("s3-access-key")[0]},{state.secret("s3-secret-key")[0]}"'
    argv = [
        str(Path(sys.executable).parent / "rclone"),
        "serve",
        "s3",
        "--addr",
        f"{HOST}:{runtime.ports.s3}",
        "--log-level",
        "NOTICE",
        # Files copied into a bucket folder by hand show up within seconds (default 5 min).
        "--dir-cache-time",
        "10s",
        # Every user's server and Dask worker holds these keys: served read-write, any user
        # could overwrite or delete the archive everyone reads. The platform seeds it through
        # files (local/archive.py), never through S3; an admin adds data the same way.
        "--read-only",
        str(state.archive),
    ]
    return Service(
        ManagedProcess("s3", argv, env=env, log_path=state.logs / "s3.log", stop_timeout=10),
        ready_url=f"{runtime.s3_url}/",
        ready_timeout=30,
    )


def _configured_tool(
    name: str,
    tool: str,
    config_file: str,
    runtime: LocalRuntime,
    state: StateDir,
    cwd: Path,
    stop_timeout: float,
) -> ManagedProcess:
    """A venv command started with ``--config hub_config/<config_file>``."""
    argv = [
        str(Path(sys.executable).parent / tool),
        "--config",
        str(Path(runtime.hub_config_dir) / config_file),
    ]
    return ManagedProcess(
        name,
        argv,
        env=_base_env(runtime, state),
        log_path=state.logs / f"{name}.log",
        cwd=cwd,
        stop_timeout=stop_timeout,
    )


def gateway_service(runtime: LocalRuntime, state: StateDir) -> Service:
    return Service(
        _configured_tool(
            "dask-gateway",
            "dask-gateway-server",
            "dask_gateway_config.py",
            runtime,
            state,
            cwd=state.gateway,
            stop_timeout=30,
        ),
        ready_url=gateway_api(runtime.gateway_url, GatewayPath.HEALTH),
        ready_timeout=60,
        ok_statuses=range(200, 300),
    )


def accounting_service(runtime: LocalRuntime, state: StateDir) -> Service:
    """The meter, enforcer and spend pages: an external hub service, as on Kubernetes.

    It is given what JupyterHub gives the services it starts: its hub token (the one
    registered for it), the hub's API URL, and the OAuth client's settings that HubOAuth
    reads for the spend pages' login (client ``service-accounting``, its callback under
    ``/services/accounting/``); the hub makes that client from the registration's URL.
    """
    env = _base_env(runtime, state)
    env.update(external_service_oauth(ACCOUNTING_SERVICE))
    env["JUPYTERHUB_API_TOKEN"] = state.secret("accounting-api-token")[0]
    env["JUPYTERHUB_API_URL"] = runtime.hub_api_url
    env["JUPYTERHUB_BASE_URL"] = "/"
    env["JUPYTERHUB_SERVICE_URL"] = runtime.accounting_url
    process = ManagedProcess(
        "accounting",
        [sys.executable, "-m", ACCOUNTING_MODULE],
        env=env,
        log_path=state.logs / "accounting.log",
        cwd=state.root,
        stop_timeout=20,
    )
    return Service(
        process,
        ready_url=accounting_api(runtime.accounting_url, AccountingPath.HEALTH),
        ready_timeout=90,
        ok_statuses=range(200, 300),
        restartable=True,
    )


def hub_service(runtime: LocalRuntime, state: StateDir) -> Service:
    """JupyterHub, restartable: a restarted hub re-adopts the running servers from its
    database (by pid), stops the proxy its killed predecessor left (``ConfigurableHTTPProxy``
    reads its pid file) and starts its own, which it gives every route again."""
    return Service(
        # The hub stops every user server on shutdown: give it time before SIGKILL.
        _configured_tool(
            "jupyterhub", "jupyterhub", "jupyterhub_config.py", runtime, state, cwd=state.hub, stop_timeout=60
        ),
        ready_url=f"{runtime.hub_internal_url}/hub/health",
        ready_timeout=120,
        ok_statuses=range(200, 300),
        restartable=True,
    )


def culler_service(runtime: LocalRuntime, state: StateDir, timeout_minutes: int) -> Service:
    env = _base_env(runtime, state)
    env["JUPYTERHUB_API_TOKEN"] = state.secret("culler-api-token")[0]
    seconds = timeout_minutes * 60
    argv = [
        sys.executable,
        "-m",
        "jupyterhub_idle_culler",
        f"--url={runtime.hub_api_url}",
        f"--timeout={seconds}",
        f"--cull-every={max(30, min(300, seconds // 4))}",
    ]
    return Service(
        ManagedProcess(
            "idle-culler", argv, env=env, log_path=state.logs / "idle-culler.log", stop_timeout=10
        ),
        # It serves nothing; its first API call (bad token, wrong URL) fails within a second.
        ready_url=None,
        ready_timeout=2,
        # Stateless, and it calls the hub: a cull pass while the hub restarts may end it.
        restartable=True,
    )
