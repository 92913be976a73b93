"""JupyterHub on one machine: every trait set from platform.yaml and the runtime.

``configure_local_hub(c)`` is all hub_config/jupyterhub_config.py does locally. It
wires the proxy, database and secrets into the state directory, the shared-password
login, the spawner, the environment that reaches the archive and the gateway, the
dask-gateway, accounting and idle-culler services (all started by `parhelion up`, none by
the hub) and the roles they need.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from platform_tools.classes.lifecycle import material_locks
from platform_tools.classes.materials import Home, pull_at_start
from platform_tools.config import PlatformConfig
from platform_tools.config.auth import PASSWORD_TYPES
from platform_tools.config.live import LiveConfig
from platform_tools.config.materials import materials_of
from platform_tools.contract.environment import (
    accounting_client_environment,
    dask_lab_environment,
    gateway_client_environment,
)
from platform_tools.contract.passwords import hub_database
from platform_tools.contract.services import (
    ADMIN_SERVICE,
    CULLER_SERVICE,
    GATEWAY_SERVICE,
    HubService,
    accounting_service,
    gateway_public_address,
    hub_roles,
)
from platform_tools.hub.auth import (
    CLIENT_SECRET_FILE,
    CLIENT_SECRET_VARIABLE,
    LiveAllowedSharedPasswordAuthenticator,
    client_secret,
    configure_admission,
    configure_authenticator,
)
from platform_tools.hub.limits import configure_limits
from platform_tools.hub.passwords import configure_password_login
from platform_tools.hub.proxy import PatientProxy
from platform_tools.hub.spawn import SpawnRefused, check_spawn, options_from_form, profile_form
from platform_tools.hub.spawners import GroupedSimpleSpawner
from platform_tools.hub.spawnqueue import default_concurrent_spawns
from platform_tools.hub.systemusers import SystemUserSpawner
from platform_tools.local.accounts import AccountError, Accounts, lock_file
from platform_tools.local.environment import user_data_environment
from platform_tools.local.homes import provide_notebooks
from platform_tools.local.kernels import kernel_settings
from platform_tools.local.runtime import HOST, LocalRuntime
from platform_tools.local.servergroup import group_base
from platform_tools.local.statedir import StateDir


def configure_local_hub(
    c: Any, platform: PlatformConfig | None = None, runtime: LocalRuntime | None = None
) -> None:
    runtime = runtime or LocalRuntime.from_environment()
    state = StateDir(runtime.state_dir)
    live = LiveConfig(state.platform_file)
    platform = platform or live.current()
    ports = runtime.ports

    # Network: the public proxy, the hub's own API and the proxy's API, all on loopback
    # unless the admin chose a public host for the proxy.
    c.JupyterHub.bind_url = f"http://{runtime.public_host}:{ports.hub}"
    c.JupyterHub.hub_bind_url = f"http://{HOST}:{ports.hub_api}"
    c.JupyterHub.proxy_class = PatientProxy  # route additions outlast a slow proxy
    c.ConfigurableHTTPProxy.api_url = f"http://{HOST}:{ports.proxy_api}"
    c.ConfigurableHTTPProxy.command = [runtime.proxy_command]
    c.ConfigurableHTTPProxy.auth_token = state.secret("proxy-auth-token")[0]
    c.ConfigurableHTTPProxy.pid_file = str(state.hub / "proxy.pid")

    # State
    c.JupyterHub.db_url = f"sqlite:///{hub_database(state.root)}"
    c.JupyterHub.cookie_secret_file = str(state.secret_path("cookie-secret"))
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True

    # Who logs in
    _configure_login(c, platform, state)
    c.JupyterHub.template_vars = {
        "announcement_login": f"Parhelion &middot; {platform.name}",
    }

    _configure_spawner(c, platform, runtime, state, live)
    _configure_services(c, platform, runtime, state)


def _configure_login(c: Any, platform: PlatformConfig, state: StateDir) -> None:
    """``hub.auth``: the generated shared passwords, each person's own password (first-use,
    native; stores in the state directory), or an identity provider as on Kubernetes (its
    client secret from OAUTH_CLIENT_SECRET or the state directory's secrets)."""
    c.Authenticator.admin_users = set(platform.hub.admin_users)
    auth = platform.hub.auth
    if auth.type == "shared-password":
        c.JupyterHub.authenticator_class = LiveAllowedSharedPasswordAuthenticator
        configure_admission(c, LiveAllowedSharedPasswordAuthenticator, str(state.platform_file))
        c.SharedPasswordAuthenticator.user_password = state.secret("user-password")[0]
        c.SharedPasswordAuthenticator.admin_password = state.secret("admin-password")[0]
        c.Authenticator.allowed_users = set(platform.allowed_users)
        return
    if auth.type in PASSWORD_TYPES:
        configure_password_login(c, auth, str(state.platform_file), str(state.root))
        return
    stored = state.secret_path(CLIENT_SECRET_FILE)
    environ = dict(os.environ)
    if not environ.get(CLIENT_SECRET_VARIABLE) and stored.exists():
        environ[CLIENT_SECRET_VARIABLE] = stored.read_text().strip()
    where = f"set it in the environment of `parhelion up` or write it to {stored} (mode 0600)"
    configure_authenticator(c, auth, str(state.platform_file), client_secret(environ, where))


def _configure_spawner(
    c: Any, platform: PlatformConfig, runtime: LocalRuntime, state: StateDir, live: LiveConfig
) -> None:
    venv_bin = Path(sys.executable).parent
    mode = runtime.spawner_of(platform)  # as `parhelion up` decided at start
    system_users = mode == "system-users"
    c.JupyterHub.spawner_class = SystemUserSpawner if system_users else GroupedSimpleSpawner
    c.SystemUserSpawner.account_prefix = platform.local.accounts.prefix
    accounts = Accounts.of(platform, lock_file(state.root))
    c.Spawner.group_base = group_base(state.root)  # a stop stops all of a server's processes
    configure_limits(c, runtime.limits, group_base(state.root))  # systemd units, or a warning
    c.Spawner.cmd = [str(venv_bin / "jupyterhub-singleuser")]
    server_args = ["--allow-root"] if os.geteuid() == 0 and not system_users else []
    c.Spawner.args = server_args
    c.Spawner.default_url = "/lab" if platform.hub.default_ui == "lab" else "/tree"
    # Many servers start at once on two cores (a class at 9:00): be patient.
    c.Spawner.start_timeout = 180
    c.Spawner.http_timeout = 180
    # A fair line instead of JupyterHub's 429 (which counts the students waiting in it).
    c.QueuedSpawner.concurrent_spawns = platform.local.concurrent_spawns or default_concurrent_spawns()
    c.JupyterHub.concurrent_spawn_limit = 0
    if not system_users:
        c.SimpleLocalProcessSpawner.home_dir_template = str(state.homes / "{username}")

    environment = {"PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}
    environment.update(user_data_environment(platform, runtime, state))
    environment.update(dask_lab_environment(gateway=platform.dask_gateway.enabled))
    if platform.dask_gateway.enabled:
        environment.update(
            gateway_client_environment(
                address=runtime.gateway_public_url,
                proxy_address=runtime.gateway_scheduler_address,
                public_address=gateway_public_address(runtime.hub_url),
            )
        )
    if platform.accounting.enabled:  # through the hub's proxy, as a browser reaches it
        environment.update(accounting_client_environment(runtime.hub_internal_url))
    c.Spawner.environment = environment

    notebooks = Path(runtime.notebooks_dir)
    accounting_url = runtime.accounting_url if platform.accounting.enabled else None
    accounting_token = state.secret("accounting-api-token")[0]

    c.Spawner.options_form = lambda spawner: profile_form(live, spawner.user.name)
    # JupyterHub calls options_from_form(formdata, spawner=...)
    c.Spawner.options_from_form = lambda formdata, spawner=None: options_from_form(formdata)

    async def before_spawn(spawner: Any) -> None:
        """Quota and budget checks, then the chosen profile's sizes, then the home."""
        name = await check_spawn(spawner, live, accounting_url, accounting_token, mode)
        config = live.current()
        profile = config.profiles[name]
        spawner.cpu_limit = profile.cpu_limit
        spawner.cpu_guarantee = profile.cpu_guarantee
        spawner.mem_limit = int(profile.mem_limit_gib * 2**30)
        spawner.mem_guarantee = int(profile.mem_guarantee_gib * 2**30)
        spawner.user_options = {**(spawner.user_options or {}), "profile": name}
        # made on first start (useradd, flock): off the event loop, where 40 others are starting
        account = await asyncio.to_thread(_account, accounts, spawner) if system_users else None
        owner = (account.uid, account.gid) if account else (None, None)
        kernel_environment, kernel_args = kernel_settings(
            runtime.kernel_socket_dir, spawner.user.name, *owner
        )
        spawner.args = [*server_args, *kernel_args]
        spawner.environment = {
            **spawner.environment,
            **kernel_environment,
            "PARHELION_PROFILE": name,
            "PARHELION_IMAGE": config.images[profile.image],
        }
        if account:
            if hasattr(spawner, "username_template"):  # a systemd unit (hub.limits): as the account
                spawner.username_template = account.name
            await asyncio.to_thread(provide_notebooks, account.home, notebooks, account.uid, account.gid)
            home = Home(spawner.user.name, account.home, account.uid, account.gid, account.name)
        else:
            provide_notebooks(Path(spawner.home_dir), notebooks)
            home = Home(spawner.user.name, Path(spawner.home_dir))
        # the class's materials, as an nbgitpuller link would: as the student, not waited for
        starting = [m for _, m in materials_of(config, spawner.user.name) if m.pull_on_start]
        if starting:
            pull_at_start(home, starting, material_locks(state), spawner.log)

    c.Spawner.pre_spawn_hook = before_spawn


def _account(accounts: Accounts, spawner: Any):
    """The user's account, made if new; a refusal (an account Parhelion did not make) is the
    sentence the person reads, and the admin's log line."""
    try:
        return accounts.ensure(spawner.user.name)
    except AccountError as exc:
        spawner.log.error("refused to start %s's server: %s", spawner.user.name, exc)
        raise SpawnRefused(
            "Your account on this machine cannot be set up; the admins have been told why."
        ) from exc


def _configure_services(c: Any, platform: PlatformConfig, runtime: LocalRuntime, state: StateDir) -> None:
    """The hub services of one machine and their roles (``contract.hub_roles``, as on EKS)."""
    services = []
    if platform.dask_gateway.enabled:
        services.append(
            # oauth_no_confirm: the dashboards' login (gateway/dashboards.py) asks nothing of a
            # person already logged in to the hub
            HubService(
                GATEWAY_SERVICE,
                state.secret("gateway-api-token")[0],
                url=runtime.gateway_url,
                oauth_no_confirm=True,
            )
        )
    if platform.accounting.enabled:
        # External (by URL), started and restarted by `parhelion up` (services/local.py), as
        # on Kubernetes: a hub-managed one was polled only every 30 s, longer than a grace.
        services.append(accounting_service(runtime.accounting_url, state.secret("accounting-api-token")[0]))
    # Parhelion's own admin commands (`parhelion class prewarm|close`, `parhelion loadtest`).
    services.append(HubService(ADMIN_SERVICE, state.secret("admin-api-token")[0]))
    if platform.hub.cull_idle_servers_after_minutes:
        # Started by `parhelion up` itself (not hub-managed) so hub restarts and
        # shutdowns do not wait on it.
        services.append(HubService(CULLER_SERVICE, state.secret("culler-api-token")[0]))
    c.JupyterHub.services = [service.registration() for service in services]
    c.JupyterHub.load_roles = hub_roles(service.name for service in services)
