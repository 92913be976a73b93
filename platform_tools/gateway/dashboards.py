"""Dask dashboards for their owner only: Parhelion's gate on dask-gateway's API server.

Upstream, dask-gateway's proxies (the Go proxy on one machine, Traefik on Kubernetes) serve
``/services/dask-gateway/clusters/NAME/`` straight from the scheduler's dashboard with no
authentication: the unguessable cluster name is the only guard, and a name leaks through logs,
screenshots and shared notebooks. A dashboard shows task keys, worker addresses and, through
its profiler, the user's code.

Here the dashboard routes are served by the gateway's own API server instead (one machine: the
backend does not register them with the Go proxy, whose default route is the API; Kubernetes:
the chart's IngressRoute sends ``/clusters/`` to the API before the controller's per-cluster
routes, helm/parhelion/templates/gateway-dashboards.yaml). The gate:

* identifies the person with the hub: a browser logs in through the hub's OAuth (the gateway's
  own OAuth client, ``service-dask-gateway``: no prompt, the person is already logged in to
  the hub) and then carries a session cookie sent only to dashboards; a program sends a hub
  token (``Authorization: token ...``) whose scopes include access to the gateway;
* lets through the cluster's owner and hub admins (403 for others, 401 or a redirect to the
  login for nobody), and only ``individual-plots.json`` unauthenticated: dask-labextension's
  server side fetches it without the person's credentials to recognise a dashboard, and it is
  the same list of plot paths for every cluster;
* proxies HTTP and the Bokeh websockets (``.../ws``) to the scheduler's dashboard.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import WSMsgType, web
from traitlets import Integer
from traitlets.config import LoggingConfigurable

from platform_tools.contract.services import (
    GATEWAY_OAUTH_CLIENT,
    GATEWAY_PREFIX,
    GATEWAY_SERVICE,
    HUB_OAUTH_AUTHORIZE,
    HUB_OAUTH_TOKEN,
    DashboardPath,
)

# Headers that describe one hop, never forwarded (RFC 9110 7.6.1), and the person's credentials,
# which the scheduler has no use for.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade", "host", "cookie", "authorization"}
)
ACCESS_SCOPES = frozenset({"access:services", f"access:services!service={GATEWAY_SERVICE}"})


@dataclass(frozen=True)
class Person:
    name: str
    admin: bool
    until: float


class DashboardGateMixin(LoggingConfigurable):
    """Serve clusters' dashboards through the API server, to their owners and hub admins only."""

    # Short: an admin demoted, or a person removed, keeps what their session says until it ends
    # (their clusters are stopped when they are removed, so only an admin's view outlives it).
    dashboard_session_seconds = Integer(
        900, config=True, help="How long a browser's dashboard session lasts before a new (silent) login."
    )

    _gate_sessions: dict[str, Person]
    _gate_states: dict[str, tuple[str, float]]
    _gate_http: aiohttp.ClientSession | None = None

    async def setup(self, app: web.Application) -> None:
        await super().setup(app)
        self._gate_sessions, self._gate_states, self._gate_tokens = {}, {}, {}
        # dask-gateway's JupyterHub authenticator: the hub's API URL and the gateway's token (its
        # OAuth client's secret). Under another authenticator nobody can be identified, and only
        # the public plots' list is served: the gate fails closed.
        self._gate_auth = app.get("authenticator")
        if not getattr(self._gate_auth, "jupyterhub_api_url", ""):
            self.log.warning("dashboards: not a JupyterHub authenticator; dashboards are served to nobody")
        # no decompression: bytes pass through as the scheduler sent them, encoding and all
        self._gate_http = aiohttp.ClientSession(auto_decompress=False)
        self.add_dashboard_routes(app)

    def add_dashboard_routes(self, app: web.Application) -> None:
        """The dashboards and the gate's OAuth callback, at the contract's paths."""
        app.router.add_route("*", DashboardPath.ROUTE, self._dashboard_route)
        app.router.add_get(DashboardPath.OAUTH_CALLBACK, self._dashboard_oauth_callback)

    async def cleanup(self) -> None:
        if self._gate_http is not None:
            await self._gate_http.close()
        await super().cleanup()

    async def _check_cluster_proxied(self, cluster: Any) -> None:
        """The local backends' route registration, without the dashboard's: the Go proxy then
        sends ``/clusters/NAME/`` to its default route, this API server (the gate)."""
        if not cluster.added_to_proxies:
            await self.proxy.add_route(kind="SNI", sni=cluster.name, target=cluster.scheduler_address)
            cluster.added_to_proxies = True

    # ------------------------------------------------------------------ who asks

    async def _person(self, request: web.Request) -> Person | None:
        """The person a dashboard request comes from: their session cookie, or a hub token."""
        now = time.time()
        session = request.cookies.get(DashboardPath.COOKIE)
        if session and (person := self._gate_sessions.get(session)) and person.until > now:
            return person
        header = request.headers.get("Authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() in ("token", "bearer", "jupyterhub") and token:
            cached = self._gate_tokens.get(token)
            if cached and cached.until > now:
                return cached
            person = await self._hub_identity(token)
            if person is not None:
                self._gate_tokens = {k: v for k, v in self._gate_tokens.items() if v.until > now}
                self._gate_tokens[token] = person
            return person
        return None

    async def _hub_identity(self, token: str) -> Person | None:
        """Who a hub token belongs to, if its scopes reach the gateway (as dask-gateway's own
        JupyterHub authenticator requires): a token made for another service does not."""
        api = getattr(self._gate_auth, "jupyterhub_api_url", "")
        if not api:
            return None
        url = f"{api}/user"
        async with self._gate_http.get(url, headers={"Authorization": f"token {token}"}) as answer:
            if answer.status >= 400:
                return None
            model = await answer.json()
        if model.get("kind") != "user" or not ACCESS_SCOPES & set(model.get("scopes", [])):
            return None
        return Person(model["name"], bool(model.get("admin")), time.time() + 60)

    def _login(self, request: web.Request) -> web.Response:
        """Send a browser through the hub's OAuth, back to the dashboard it asked for."""
        state = secrets.token_urlsafe(24)
        self._gate_states = {k: v for k, v in self._gate_states.items() if v[1] > time.time()}
        self._gate_states[state] = (GATEWAY_PREFIX + request.rel_url.path_qs, time.time() + 600)
        query = urlencode(
            {
                "client_id": GATEWAY_OAUTH_CLIENT,
                "redirect_uri": GATEWAY_PREFIX + DashboardPath.OAUTH_CALLBACK,
                "response_type": "code",
                "state": state,
            }
        )
        response = web.HTTPFound(f"{HUB_OAUTH_AUTHORIZE}?{query}")
        response.set_cookie(
            DashboardPath.STATE_COOKIE,
            state,
            path=GATEWAY_PREFIX + "/",
            httponly=True,
            samesite="Lax",
            max_age=600,
        )
        return response

    async def _dashboard_oauth_callback(self, request: web.Request) -> web.Response:
        state, code = request.query.get("state", ""), request.query.get("code", "")
        pending = self._gate_states.pop(state, None)
        if not getattr(self._gate_auth, "jupyterhub_api_url", ""):
            raise web.HTTPForbidden(text="Dashboards cannot be opened here.")
        if (
            not pending
            or pending[1] < time.time()
            or request.cookies.get(DashboardPath.STATE_COOKIE) != state
        ):
            raise web.HTTPForbidden(
                text="This login did not start here, or took too long: open the dashboard again."
            )
        form = {
            "client_id": GATEWAY_OAUTH_CLIENT,
            "client_secret": self._gate_auth.jupyterhub_api_token,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": GATEWAY_PREFIX + DashboardPath.OAUTH_CALLBACK,
        }
        async with self._gate_http.post(
            f"{self._gate_auth.jupyterhub_api_url}{HUB_OAUTH_TOKEN}", data=form
        ) as answer:
            if answer.status != 200:
                raise web.HTTPForbidden(text="The hub did not confirm this login.")
            token = (await answer.json())["access_token"]
        person = await self._hub_identity(token)
        if person is None:
            raise web.HTTPForbidden(text="The hub did not confirm this login.")
        session = secrets.token_urlsafe(32)
        now = time.time()
        self._gate_sessions = {k: v for k, v in self._gate_sessions.items() if v.until > now}
        self._gate_sessions[session] = Person(person.name, person.admin, now + self.dashboard_session_seconds)
        response = web.HTTPFound(pending[0])
        secure = request.headers.get("X-Forwarded-Proto", request.scheme) == "https"
        response.set_cookie(
            DashboardPath.COOKIE,
            session,
            path=f"{GATEWAY_PREFIX}/clusters/",
            httponly=True,
            samesite="Lax",
            secure=secure,
            max_age=self.dashboard_session_seconds,
        )
        response.del_cookie(DashboardPath.STATE_COOKIE, path=GATEWAY_PREFIX + "/")
        return response

    # ------------------------------------------------------------------ the gate

    async def _dashboard_route(self, request: web.Request) -> web.StreamResponse:
        name, tail = request.match_info["cluster_name"], request.match_info["tail"]
        websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        if tail not in DashboardPath.PUBLIC_FILES:
            person = await self._person(request)
            if person is None:
                if request.method == "GET" and not websocket and "Authorization" not in request.headers:
                    return self._login(request)
                raise web.HTTPUnauthorized(text="Log in to the hub to see this dashboard.")
        cluster = await self.get_cluster(name)
        if cluster is None or not cluster.dashboard_address:
            raise web.HTTPNotFound(text="No running cluster has this name.")
        if tail not in DashboardPath.PUBLIC_FILES and person.name != cluster.username and not person.admin:
            self.log.warning(
                "%s asked for the dashboard of %s's cluster %s: refused", person.name, cluster.username, name
            )
            raise web.HTTPForbidden(text="This dashboard belongs to someone else.")
        target = f"{cluster.dashboard_address.rstrip('/')}/{tail}"
        if request.query_string:
            target += f"?{request.query_string}"
        if websocket:
            return await self._proxy_websocket(request, target)
        return await self._proxy_http(request, target)

    async def _proxy_http(self, request: web.Request, target: str) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read() if request.can_read_body else None
        async with self._gate_http.request(
            request.method, target, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP and key.lower() != "set-cookie":
                    response.headers.add(key, value)
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _proxy_websocket(self, request: web.Request, target: str) -> web.WebSocketResponse:
        """Bokeh's websocket: its subprotocols (which carry Bokeh's session token) and Origin
        pass through; messages are pumped both ways until either side closes."""
        protocols = [
            p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
        ]
        url = "ws" + target.removeprefix("http")
        async with self._gate_http.ws_connect(
            url, protocols=protocols, origin=request.headers.get("Origin"), max_msg_size=0
        ) as upstream:
            downstream = web.WebSocketResponse(
                protocols=[upstream.protocol] if upstream.protocol else (), max_msg_size=0
            )
            await downstream.prepare(request)
            pumps = [
                asyncio.ensure_future(_pump(downstream, upstream)),
                asyncio.ensure_future(_pump(upstream, downstream)),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await downstream.close()
            return downstream


async def _pump(source: Any, sink: Any) -> None:
    async for message in source:
        if message.type == WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        else:  # CLOSE, CLOSING, ERROR
            break
