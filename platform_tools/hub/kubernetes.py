"""The hub on Kubernetes: KubeSpawner configured from platform.yaml.

zero-to-jupyterhub's own jupyterhub_config.py runs first (proxy, database, secrets,
authentication from the chart's values); the hub image puts hub_config/jupyterhub_config.py
in its ``jupyterhub_config.d``, which then calls :func:`configure_kubernetes_hub` to apply
what platform.yaml decides, the same decisions the local hub makes:

* the profiles a user may start (by their groups), each showing its $/hour, with its image,
  CPU and memory guarantees and limits, on the "users" node pool;
* the quota and budget check before every spawn (the accounting service answers);
* the labels and annotations the meter selects pods and claims by, and the user's home
  volume sized from their storage quota;
* the environment that makes S3 archives and dask-gateway work with no arguments;
* the accounting service registered as a hub service, with its roles.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from platform_tools.classes.materials import post_start_hook
from platform_tools.config import PlatformConfig
from platform_tools.config.auth import OAUTH_TYPES
from platform_tools.config.live import LiveConfig
from platform_tools.config.materials import materials_of
from platform_tools.config.policy import resolve
from platform_tools.contract import names
from platform_tools.contract.environment import (
    ACCOUNTING_ADDRESS_VARIABLE,
    accounting_client_environment,
    archive_environment,
    dask_lab_environment,
    default_archive,
    gateway_client_environment,
)
from platform_tools.contract.labels import PROFILE, USERS_POOL, metering_metadata
from platform_tools.contract.services import (
    ACCOUNTING_SERVICE,
    GATEWAY_PREFIX,
    GATEWAY_SERVICE,
    accounting_api,
    accounting_service,
    gateway_public_address,
    hub_roles,
    merge_roles,
)
from platform_tools.hub.auth import (
    CLIENT_SECRET_VARIABLE,
    AuthSetupError,
    client_secret,
    configure_authenticator,
)
from platform_tools.hub.spawn import check_spawn

#: Where each user's home volume is mounted in their pod (z2jh's default user, jovyan).
HOME_MOUNT = "/home/jovyan"


def profile_list(config: PlatformConfig, username: str) -> list[dict]:
    """KubeSpawner profiles for ``username``: those their groups allow, with $/hour."""
    policy = resolve(config, username)
    allowed, default = policy.profiles, policy.default_profile
    labels, _ = metering_metadata(username, "server")
    profiles = []
    for name in allowed:
        profile = config.profiles[name]
        profiles.append(
            {
                "slug": name,
                "display_name": f"{profile.display_name} · ${profile.price_per_hour_usd:.3f}/hour",
                "description": profile.description,
                "default": name == default,
                "kubespawner_override": {
                    "image": config.images[policy.image or profile.image],
                    "cpu_guarantee": profile.cpu_guarantee,
                    "cpu_limit": profile.cpu_limit,
                    "mem_guarantee": f"{profile.mem_guarantee_gib:g}G",
                    "mem_limit": f"{profile.mem_limit_gib:g}G",
                    "node_selector": dict(USERS_POOL),
                    "extra_labels": {**labels, PROFILE: name},
                },
            }
        )
    return profiles


def user_environment(config: PlatformConfig, gateway: dict[str, str], proxy: str) -> dict[str, str]:
    """What servers (and, through the gateway, their Dask pods) need in their environment;
    ``proxy`` is where they reach the hub's proxy inside the cluster (``names.proxy_origin``)."""
    env = dask_lab_environment(gateway=config.dask_gateway.enabled)
    archive = default_archive(config)
    if archive is not None:
        env |= archive_environment(archive)
    if config.dask_gateway.enabled:
        env |= gateway_client_environment(gateway["address"], gateway["proxy"], gateway["public"])
    if config.accounting.enabled:  # through the hub's proxy, as users reach dask-gateway
        env |= accounting_client_environment(os.environ.get(ACCOUNTING_ADDRESS_VARIABLE, proxy))
    return env


def literal(value: str) -> str:
    """``value`` as KubeSpawner passes it on: it expands every environment string as a
    ``str.format`` template ({username}, ...), so the braces of JSON values (the archives'
    options) must be doubled or spawning fails with a KeyError."""
    return value.replace("{", "{{").replace("}", "}}")


def zero_to_jupyterhub_proxy() -> dict:
    """zero-to-jupyterhub's ``proxy`` values, as its hub reads them (z2jh.get_config, in the
    hub pod only; elsewhere none: a proxy without HTTPS)."""
    try:
        from z2jh import get_config
    except ImportError:
        return {}
    return get_config("proxy", {}) or {}


def public_origin(config: PlatformConfig) -> str:
    """The hub's public origin, from the identity provider's callback URL (a Kubernetes hub
    always logs in through one); empty if there is none."""
    callback = getattr(config.hub.auth, "callback_url", "")
    if not callback:
        return ""
    parts = urlsplit(callback)
    return f"{parts.scheme}://{parts.netloc}"


def gateway_addresses(release: str, proxy: str, origin: str = "") -> dict[str, str]:
    """Where users reach dask-gateway: through the hub's proxy at ``proxy`` (its in-cluster
    origin), as in a daskhub; its traefik for the scheduler connections, named from the
    release; dashboards at the hub's public ``origin`` (each overridable by the environment)."""
    public = gateway_public_address(origin) if origin else f"{GATEWAY_PREFIX}/"
    return {
        "address": os.environ.get("PARHELION_GATEWAY_ADDRESS", f"{proxy}{GATEWAY_PREFIX}"),
        "proxy": os.environ.get(
            "PARHELION_GATEWAY_PROXY_ADDRESS", f"gateway://{names.gateway_traefik(release)}:80"
        ),
        "public": os.environ.get("PARHELION_GATEWAY_PUBLIC_ADDRESS", public),
    }


def prepare_spawner(spawner: Any, config: PlatformConfig) -> None:
    """Per user: metering annotations on the pod and the home claim, the claim's size, and
    their classes' materials pulled at the pod's start."""
    username = spawner.user.name
    materials_hook(spawner, config)
    _, annotations = metering_metadata(username, "server")
    spawner.extra_annotations = {**spawner.extra_annotations, **annotations}
    home_labels, home_annotations = metering_metadata(username, "home")
    spawner.storage_extra_labels = {**spawner.storage_extra_labels, **home_labels}
    spawner.storage_extra_annotations = {**spawner.storage_extra_annotations, **home_annotations}
    storage_gib = resolve(config, username).quota.storage_gib
    if storage_gib is not None:
        spawner.storage_capacity = f"{storage_gib:g}Gi"


#: The spawner's own lifecycle hooks (the chart's), as they were before materials_hook ran.
_CHART_HOOKS = "_parhelion_chart_lifecycle_hooks"


def materials_hook(spawner: Any, config: PlatformConfig) -> None:
    """The user's classes' materials, pulled in their own pod at every start (a postStart
    hook running nbgitpuller as the pod's user): on Kubernetes the home is the pod's volume,
    so this is where materials arrive. A repository on a machine's disk (file://, a path)
    cannot be reached from a pod and is left out, as is any class when the chart's values
    already set a postStart hook (``singleuser.lifecycleHooks``), which is kept."""
    # JupyterHub keeps one spawner per user for the hub's life: the hooks it was configured
    # with (the chart's) are remembered at its first start, and every start recomputes from
    # them, so a hook this function set before is never taken for the chart's own.
    chart_hooks = getattr(spawner, _CHART_HOOKS, None)
    if chart_hooks is None:
        chart_hooks = dict(spawner.lifecycle_hooks or {})
        setattr(spawner, _CHART_HOOKS, chart_hooks)
    spawner.lifecycle_hooks = dict(chart_hooks)
    wanted = []
    for name, materials in materials_of(config, spawner.user.name):
        if materials.local:
            spawner.log.error(
                "class %s: course.materials.repo %s is on one machine's disk, which pods cannot "
                "reach: not pulled (use an https:// repository)",
                name,
                materials.repo,
            )
        else:
            wanted.append(materials)
    if not wanted:
        return
    hooks = dict(chart_hooks)
    if "postStart" in hooks:
        spawner.log.warning(
            "%s's classes' materials are not pulled at start: a postStart hook is already set",
            spawner.user.name,
        )
        return
    start_timeout = getattr(spawner, "start_timeout", None)
    spawner.lifecycle_hooks = {**hooks, "postStart": post_start_hook(wanted, HOME_MOUNT, start_timeout)}


def cull_timeout(service: dict, seconds: int) -> dict:
    """zero-to-jupyterhub's idle-culler service, with platform.yaml's timeout."""
    command = [str(part) for part in service.get("command", [])]
    if not any("jupyterhub_idle_culler" in part or "jupyterhub-idle-culler" in part for part in command):
        return service
    command = [part for part in command if not part.startswith("--timeout=")] + [f"--timeout={seconds}"]
    return {**service, "command": command}


def merge_into(section: Any, trait: str, ours: dict) -> None:
    """``section.trait`` updated with ``ours``, keeping what earlier configuration set."""
    earlier = section.get(trait, {})
    section[trait] = {**earlier, **ours}


def configure_kubernetes_login(c: Any, config: PlatformConfig, config_path: str, environ: Any) -> None:
    """Log in through the identity provider ``hub.auth`` names, never a shared password or
    zero-to-jupyterhub's default dummy authenticator (which admits any name): a hub on a
    cluster is reachable by strangers. The chart refuses both when it renders; this refuses
    them again should the values have been bypassed."""
    auth = config.hub.auth
    if auth.type not in OAUTH_TYPES:
        raise AuthSetupError(
            f"platform.yaml hub.auth.type is {auth.type!r}: a Kubernetes deployment logs people in "
            f"through an identity provider ({', '.join(OAUTH_TYPES)}); see helm/README.md"
        )
    where = (
        f"the chart sets it from the Secret named in jupyterhub.hub.extraEnv.{CLIENT_SECRET_VARIABLE} "
        "(kubectl -n NAMESPACE create secret generic parhelion-oauth --from-literal=client-secret=...)"
    )
    configure_authenticator(c, auth, config_path, client_secret(environ, where))
    c.Authenticator.admin_users = set(config.hub.admin_users)


def configure_kubernetes_hub(c: Any, live: LiveConfig | None = None) -> None:
    live = live or LiveConfig(os.environ["PARHELION_CONFIG"])
    config = live.current()
    namespace = os.environ.get("POD_NAMESPACE", "parhelion")
    # Names from the release, as zero-to-jupyterhub's get_name and the daskhub chart derive them.
    release = names.release_of(os.environ)
    accounting_url = os.environ.get(
        "PARHELION_ACCOUNTING_URL", f"http://{names.accounting_service(release)}:{names.ACCOUNTING_PORT}"
    )
    token = os.environ.get("PARHELION_ACCOUNTING_TOKEN", "")
    accounting_api(accounting_url, "")  # an origin, or a clear error now rather than at each spawn

    configure_kubernetes_login(c, config, str(live.path), os.environ)

    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.KubeSpawner.profile_list = lambda spawner: profile_list(live.current(), spawner.user.name)
    # zero-to-jupyterhub's configuration ran first: merge into what it set, never replace it.
    # Its hub.jupyter.org/network-access-hub label is what lets users' pods reach the hub
    # through its NetworkPolicy; its singleuser.extraEnv and nodeSelector stay too.
    merge_into(c.KubeSpawner, "node_selector", USERS_POOL)
    merge_into(c.KubeSpawner, "extra_labels", metering_metadata("", "server")[0])
    proxy = names.proxy_origin(zero_to_jupyterhub_proxy())
    environment = user_environment(config, gateway_addresses(release, proxy, public_origin(config)), proxy)
    merge_into(c.KubeSpawner, "environment", {k: literal(v) for k, v in environment.items()})
    c.KubeSpawner.uid = 1000
    c.KubeSpawner.gid = 1000
    c.KubeSpawner.fs_gid = 1000
    c.KubeSpawner.allow_privilege_escalation = False
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.storage_class = os.environ.get("PARHELION_HOME_STORAGE_CLASS", "gp3")
    c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
    c.KubeSpawner.pvc_name_template = "claim-{user_server}"
    c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
    c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": HOME_MOUNT}]
    scratch = os.environ.get("PARHELION_SCRATCH_CLAIM")  # the chart's shared EFS claim, when enabled
    if scratch:
        c.KubeSpawner.volumes.append({"name": "scratch", "persistentVolumeClaim": {"claimName": scratch}})
        c.KubeSpawner.volume_mounts.append({"name": "scratch", "mountPath": "/scratch"})

    async def before_spawn(spawner: Any) -> None:
        await check_spawn(spawner, live, accounting_url if config.accounting.enabled else None, token)
        prepare_spawner(spawner, live.current())

    c.KubeSpawner.pre_spawn_hook = before_spawn

    cull_after = config.hub.cull_idle_servers_after_minutes
    if cull_after and "services" in c.JupyterHub:
        c.JupyterHub.services = [cull_timeout(service, cull_after * 60) for service in c.JupyterHub.services]

    # The gateway is registered by the chart's values (jupyterhub.hub.services); the
    # accounting service here. Roles for both come from the contract, as on one machine,
    # merged with zero-to-jupyterhub's own.
    ours = [GATEWAY_SERVICE] if config.dask_gateway.enabled else []
    if "services" in c.JupyterHub:  # the gateway's route: its traefik, named from the release
        c.JupyterHub.services = [
            {
                **service,
                "url": service.get("url") or f"http://{names.gateway_traefik(release)}",
                # the dashboards' login (gateway/dashboards.py) asks nothing of a logged-in person
                "oauth_no_confirm": True,
            }
            if service.get("name") == GATEWAY_SERVICE
            else service
            for service in c.JupyterHub.services
        ]
    if config.accounting.enabled:
        ours.append(ACCOUNTING_SERVICE)
        services = list(c.JupyterHub.services) if "services" in c.JupyterHub else []
        services.append(accounting_service(accounting_url, token).registration())
        c.JupyterHub.services = services
    existing = list(c.JupyterHub.load_roles) if "load_roles" in c.JupyterHub else []
    c.JupyterHub.load_roles = merge_roles(existing, hub_roles(ours))
    c.KubeSpawner.namespace = namespace
