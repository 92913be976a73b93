"""The hub services: their names, URL prefixes, API paths, registrations and roles.

JupyterHub's proxy serves a service named ``NAME`` at ``/services/NAME/`` and forwards the
path unchanged, so a service answers under its prefix whether it is reached through the hub
or directly at the URL it is registered with. Two helpers build every URL the processes call:

* ``accounting_api(base, path)`` — ``base`` is the accounting service's origin as registered
  with the hub (``http://host:port``) or the hub's own public URL; the prefix is added here;
* ``gateway_api(base, path)`` — the same for dask-gateway's proxy and Parhelion's gateway
  routes.

Passing a base that already holds the prefix is refused: the EKS spawn check once called
``http://parhelion-accounting:8080api/v1/check/spawn`` because two files joined differently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

GATEWAY_SERVICE = "dask-gateway"
ACCOUNTING_SERVICE = "accounting"
ADMIN_SERVICE = "parhelion-admin"  # Parhelion's class and load-test commands
CULLER_SERVICE = "idle-culler"  # the local culler (zero-to-jupyterhub registers its own)

HUB_API_PATH = "/hub/api"


def service_prefix(name: str) -> str:
    """Where the hub's proxy serves a service: ``/services/NAME/``."""
    return f"/services/{name}/"


ACCOUNTING_PREFIX = service_prefix(ACCOUNTING_SERVICE)
# dask-gateway's Proxy.prefix and the chart's gateway.prefix take it without the slash.
GATEWAY_PREFIX = service_prefix(GATEWAY_SERVICE).rstrip("/")


def external_service_oauth(name: str) -> dict[str, str]:
    """The OAuth environment JupyterHub gives a service it starts, for one it does not start.

    On Kubernetes the accounting service is a Deployment of its own, registered with the hub
    by URL: JupyterHub then makes its OAuth client with these defaults (``service-NAME``,
    ``/services/NAME/oauth_callback``), and HubOAuth in the service reads the same values from
    these variables. Without them its login redirected people to an empty client id.
    """
    prefix = service_prefix(name)
    return {
        "JUPYTERHUB_SERVICE_NAME": name,
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_CLIENT_ID": f"service-{name}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps([f"access:services!service={name}"]),
    }


class AccountingPath:
    """The accounting service's routes, relative to its prefix."""

    HEALTH = "health"
    OAUTH_CALLBACK = "oauth_callback"
    CHECK_SPAWN = "api/v1/check/spawn"
    CHECK_CLUSTER = "api/v1/check/cluster"
    USERS = "api/v1/users"
    METRICS = "metrics"
    ADMIN = "admin"
    ADMIN_CSV = "admin.csv"

    @staticmethod
    def user(username: str) -> str:
        return f"api/v1/users/{quote(username, safe='')}"

    @staticmethod
    def quota(username: str) -> str:
        return f"api/v1/users/{quote(username, safe='')}/quota"

    @staticmethod
    def class_report(name: str) -> str:
        return f"api/v1/classes/{quote(name, safe='')}/report.csv"

    @staticmethod
    def spend_page(username: str) -> str:
        return f"users/{quote(username, safe='')}"


class GatewayPath:
    """Parhelion's routes on dask-gateway's API, relative to the gateway's prefix."""

    HEALTH = "/api/health"
    USAGE = "/api/v1/parhelion/usage"

    @staticmethod
    def stop(username: str) -> str:
        return f"/api/v1/parhelion/users/{quote(username, safe='')}/stop"

    @staticmethod
    def room(cluster_name: str) -> str:
        return f"/api/v1/parhelion/clusters/{quote(cluster_name, safe='')}/room"

    # The route patterns the gateway registers (aiohttp syntax).
    STOP_ROUTE = "/api/v1/parhelion/users/{username}/stop"
    ROOM_ROUTE = "/api/v1/parhelion/clusters/{cluster_name}/room"


class DashboardPath:
    """Clusters' dashboards, behind Parhelion's gate on the gateway's API (relative to the
    gateway's prefix, which both of dask-gateway's proxies strip before the API sees a path).

    The gateway's proxies would serve ``/clusters/NAME/`` straight from the scheduler to anyone
    who knows the name; Parhelion's gate (gateway/dashboards.py) serves it only to the cluster's
    owner and hub admins, identified by the hub (its OAuth login for browsers, a hub token for
    programs). The hub registers the gateway's OAuth client with the callback below
    (``/services/dask-gateway/oauth_callback``, JupyterHub's default for a service with a URL)
    and the gateway's API token as its secret.
    """

    ROUTE = "/clusters/{cluster_name}/{tail:.*}"
    OAUTH_CALLBACK = "/oauth_callback"
    # The browser's session with the gate, sent only to dashboards.
    COOKIE = "parhelion-dask-dashboard"
    STATE_COOKIE = "parhelion-dask-dashboard-state"
    # What dask-labextension's server side fetches without the person's credentials to tell a
    # dashboard from another page: the list of the plots' paths, the same for every cluster.
    PUBLIC_FILES = frozenset({"individual-plots.json"})

    @staticmethod
    def dashboard(cluster_name: str, tail: str = "") -> str:
        return f"/clusters/{quote(cluster_name, safe='')}/{tail.lstrip('/')}"


GATEWAY_OAUTH_CLIENT = f"service-{GATEWAY_SERVICE}"
# Where the browser is sent to log in to the gate (the hub's OAuth endpoints, on the same origin
# as the dashboards), and where the gate exchanges the code (the hub's API, from the gateway).
HUB_OAUTH_AUTHORIZE = "/hub/api/oauth2/authorize"
HUB_OAUTH_TOKEN = "/oauth2/token"  # under the hub's API URL


def _join(base: str, prefix: str, path: str) -> str:
    if not base:
        raise ValueError("no base URL given")
    if urlsplit(base).path.rstrip("/").endswith(prefix.rstrip("/")):
        raise ValueError(f"{base!r}: give the service's origin, the prefix {prefix!r} is added here")
    return base.rstrip("/") + prefix.rstrip("/") + "/" + path.lstrip("/")


def accounting_api(base: str, path: str) -> str:
    """The URL of an accounting route (``AccountingPath``) at ``base``."""
    return _join(base, ACCOUNTING_PREFIX, path)


def gateway_api(base: str, path: str) -> str:
    """The URL of a gateway route (``GatewayPath``) at ``base``, the gateway proxy's origin."""
    return _join(base, GATEWAY_PREFIX, path)


def gateway_public_address(origin: str) -> str:
    """Where browsers reach dask-gateway's dashboards: the hub's PUBLIC origin + the prefix.

    dask-gateway makes each cluster's ``dashboard_link`` from it. It must be absolute:
    dask-labextension 7 resolves a root-relative link under the user's own server
    (``/user/NAME//services/...``), so the Dask panel's search never found a gateway dashboard.
    """
    if not origin.startswith(("http://", "https://")) or urlsplit(origin).path.strip("/"):
        raise ValueError(f"{origin!r}: give the hub's public origin (scheme://host[:port])")
    return origin.rstrip("/") + GATEWAY_PREFIX + "/"


def hub_api(base: str) -> str:
    """The hub's REST API at ``base`` (the hub's public URL or its API bind URL)."""
    if urlsplit(base).path.rstrip("/").endswith(HUB_API_PATH):
        raise ValueError(f"{base!r}: give the hub's URL, {HUB_API_PATH!r} is added here")
    return base.rstrip("/") + HUB_API_PATH


# ------------------------------------------------------------ registration and roles

# What each service may do through the hub's API: the least that its work needs.
SERVICE_SCOPES: dict[str, list[str]] = {
    # The meter lists users and servers; the enforcer stops servers over a hard cap.
    # `parhelion class close --kubernetes` uses this service's token (the chart's Secret) to
    # revoke the tokens of a closed class's members: tokens.
    ACCOUNTING_SERVICE: [
        "list:users",
        "read:users",
        "read:users:activity",
        "read:servers",
        "delete:servers",
        "tokens",
    ],
    # `parhelion class prewarm|close` (close revokes members' tokens) and `parhelion loadtest`.
    ADMIN_SERVICE: [
        "admin:users",
        "admin:servers",
        "list:users",
        "read:users",
        "read:servers",
        "read:metrics",
        "tokens",
    ],
    # jupyterhub-idle-culler, as its README asks.
    CULLER_SERVICE: ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    GATEWAY_SERVICE: [],  # it only asks who a token belongs to, which needs no scope
}
# Services people reach with their own login (users in a browser, servers from kernels).
PEOPLE_USE = (GATEWAY_SERVICE, ACCOUNTING_SERVICE)
SERVICE_DESCRIPTIONS = {
    ACCOUNTING_SERVICE: "Meter usage and stop what runs over a hard cap",
    ADMIN_SERVICE: "Parhelion's class commands: create users, stop servers, read the hub's metrics",
    CULLER_SERVICE: "Stop idle servers",
}


@dataclass(frozen=True)
class HubService:
    """A service as ``JupyterHub.services`` registers it."""

    name: str
    api_token: str
    url: str | None = None
    command: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    display: bool = False
    oauth_no_confirm: bool = False
    info: dict[str, str] = field(default_factory=dict)

    def registration(self) -> dict:
        entry: dict = {"name": self.name, "api_token": self.api_token, "display": self.display}
        if self.url:
            entry["url"] = self.url
        if self.command:
            entry["command"] = list(self.command)
            entry["environment"] = dict(self.environment)
        if self.oauth_no_confirm:
            entry["oauth_no_confirm"] = True
        if self.info:
            entry["info"] = dict(self.info)
        return entry


def accounting_service(url: str, api_token: str, **managed) -> HubService:
    """The accounting service's registration: shown in the hub's menu, no OAuth confirmation."""
    return HubService(
        ACCOUNTING_SERVICE,
        api_token,
        url=url,
        display=True,
        oauth_no_confirm=True,
        info={"description": "Your spend, budget and what runs for you"},
        **managed,
    )


def hub_roles(services: Iterable[str]) -> list[dict]:
    """The roles for these services, on every backend.

    Users and their servers may reach the services people use (JupyterHub >= 5 requires
    ``access:services!service=NAME`` for that; dask-gateway's JupyterHub auth checks it too);
    each service gets the scopes its work needs, and nothing more.
    """
    names = list(services)
    unknown = [name for name in names if name not in SERVICE_SCOPES]
    if unknown:
        raise ValueError(f"no scopes are defined for the service(s) {unknown}")
    access = [f"access:services!service={name}" for name in PEOPLE_USE if name in names]
    roles = [
        {
            "name": "user",
            "description": "Standard user privileges, and Parhelion's services",
            "scopes": ["self", *access],
        },
        {
            "name": "server",
            "description": "A user's server: activity, and Parhelion's services from its kernels",
            "scopes": ["users:activity!user", "access:servers!server", *access],
        },
    ]
    for name in names:
        if SERVICE_SCOPES[name]:
            roles.append(
                {
                    "name": name,
                    "description": SERVICE_DESCRIPTIONS[name],
                    "scopes": list(SERVICE_SCOPES[name]),
                    "services": [name],
                }
            )
    return roles


def merge_roles(existing: Iterable[dict], ours: Iterable[dict]) -> list[dict]:
    """``existing`` roles (zero-to-jupyterhub's, an admin's) with ours merged in by name:
    scopes and members are unions, so neither side loses a grant."""
    merged: dict[str, dict] = {role["name"]: {**role} for role in existing}
    for role in ours:
        if role["name"] not in merged:
            merged[role["name"]] = {**role}
            continue
        into = merged[role["name"]]
        for key in ("scopes", "services", "users", "groups"):
            values = list(into.get(key) or []) + [
                v for v in role.get(key) or [] if v not in (into.get(key) or [])
            ]
            if values:
                into[key] = values
    return list(merged.values())
