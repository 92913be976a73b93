"""dask-gateway on one machine: local backend, JupyterHub auth, behind the hub's proxy.

``configure_local_gateway(c)`` is all hub_config/dask_gateway_config.py does locally.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from platform_tools.config import PlatformConfig, load_platform
from platform_tools.contract.services import GATEWAY_PREFIX, GATEWAY_SERVICE
from platform_tools.gateway.options import cluster_options
from platform_tools.local.accounts import lock_file
from platform_tools.local.environment import user_data_environment
from platform_tools.local.runtime import HOST, LocalRuntime
from platform_tools.local.servergroup import dask_group_base
from platform_tools.local.statedir import StateDir


def configure_local_gateway(
    c: Any, platform: PlatformConfig | None = None, runtime: LocalRuntime | None = None
) -> None:
    runtime = runtime or LocalRuntime.from_environment()
    state = StateDir(runtime.state_dir)
    platform = platform or load_platform(state.platform_file)
    gateway = platform.dask_gateway
    venv_bin = Path(sys.executable).parent

    c.DaskGateway.address = f"{HOST}:0"  # private API, reached through the gateway's proxy
    c.Proxy.address = f"{HOST}:{runtime.ports.gateway}"
    c.Proxy.tcp_address = f"{HOST}:{runtime.ports.gateway_scheduler}"
    c.Proxy.prefix = GATEWAY_PREFIX

    # system-users: clusters as each user's own account, the one their server runs as;
    # simple: as the gateway's own OS user. As `parhelion up` decided at start.
    system_users = runtime.spawner_of(platform) == "system-users"
    c.DaskGateway.backend_class = (
        "platform_tools.gateway.limits.ParhelionSystemUsersBackend"
        if system_users
        else "platform_tools.gateway.limits.ParhelionLocalBackend"
    )
    c.SystemUsersMixin.platform_name = platform.name
    c.SystemUsersMixin.account_prefix = platform.local.accounts.prefix
    c.SystemUsersMixin.home_root = str(platform.local.accounts.home_root)
    c.SystemUsersMixin.accounts_lock = str(lock_file(state.root))
    # Per-user aggregate limits and budgets (platform.yaml re-read when it changes).
    c.AggregateLimitsMixin.platform_config_path = str(state.platform_file)
    c.AggregateLimitsMixin.accounting_url = runtime.accounting_url if platform.accounting.enabled else ""
    c.AggregateLimitsMixin.accounting_token = state.secret("accounting-api-token")[0]
    c.LocalBackend.clusters_directory = str(state.gateway / "clusters")
    c.ProcessGroupsMixin.dask_group_base = dask_group_base(state.root)  # limits, a stop kills all
    # Each cluster's directory is its user's (0700); they pass through this one (0711) only
    # when clusters run as the users themselves.
    clusters = state.gateway / "clusters"
    clusters.mkdir(parents=True, exist_ok=True)
    clusters.chmod(0o711 if system_users else 0o700)
    # distributed no longer ships dask-scheduler / dask-worker scripts.
    c.LocalClusterConfig.scheduler_cmd = [str(venv_bin / "dask"), "scheduler"]
    c.LocalClusterConfig.worker_cmd = [str(venv_bin / "dask"), "worker"]

    c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
    c.JupyterHubAuthenticator.jupyterhub_api_url = runtime.hub_api_url
    c.JupyterHubAuthenticator.jupyterhub_api_token = state.secret("gateway-api-token")[0]
    c.JupyterHubAuthenticator.jupyterhub_service_name = GATEWAY_SERVICE

    c.ClusterConfig.environment = user_data_environment(platform, runtime, state)
    c.ClusterConfig.cluster_max_workers = gateway.max_workers_per_cluster
    c.ClusterConfig.idle_timeout = gateway.idle_timeout_minutes * 60
    c.Backend.cluster_options = cluster_options(gateway)
