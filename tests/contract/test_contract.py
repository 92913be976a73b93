"""The contract between processes, checked from both sides.

Callers build every URL with ``contract.accounting_api``/``gateway_api``; the services build
their route tables from the same ``contract`` paths. These tests join the two for real:

* the accounting service's real route table (``make_app``) answers every path its callers
  use, with the handler meant for it;
* the hub's real pre-spawn check and the gateway's real budget check, given the accounting
  URL the chart's values give the hub and the gateway (host swapped for 127.0.0.1), reach a
  real accounting service (tornado app, SQLite ledger) and get its verdicts: allowed, then
  refused once the ledger shows the budget spent;
* the chart's values, its rendered accounting Service and Deployment, and the hub's service
  registration and roles agree with the contract's names, ports, prefixes and scopes.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import aiohttp
import pytest
import tornado.httputil
import yaml
from tornado.web import ErrorHandler

from platform_tools.accounting.enforcer import Actions
from platform_tools.config.live import LiveConfig
from platform_tools.contract import labels, names, services, tokens
from platform_tools.contract.services import (
    AccountingPath,
    DashboardPath,
    GatewayPath,
    accounting_api,
    gateway_api,
)
from platform_tools.gateway.limits import AggregateLimitsMixin, ClusterRefused
from platform_tools.hub.spawn import SpawnRefused, check_spawn
from platform_tools.ledger.store import Ledger, Observation
from platform_tools.services.accounting import handlers as accounting_handlers
from platform_tools.services.accounting.app import Accounting, make_app
from platform_tools.services.processes import free_tcp_ports
from tests.auth import CLIENT_SECRET, OIDC
from tests.platform import REPO_ROOT

CHART_VALUES = yaml.safe_load((REPO_ROOT / "helm" / "parhelion" / "values.yaml").read_text())

PLATFORM = """\
version: 1
name: contract-test
hub: {admin_users: [admin], users: [demo, rich]}
images: {helio: "example.org/helio:1"}
profiles:
  small: {display_name: Small, cpu_guarantee: 0.5, cpu_limit: 1, mem_guarantee_gib: 1,
          mem_limit_gib: 2, image: helio, price_per_hour_usd: 0.024, default: true}
  large: {display_name: Large, cpu_guarantee: 1, cpu_limit: 2, mem_guarantee_gib: 2,
          mem_limit_gib: 4, image: helio, price_per_hour_usd: 0.1}
groups:
  students:
    members: [demo]
    profiles: [small]
    budget: {usd: 5, period: month}
dask_gateway: {enabled: true, image: helio}
"""


# ----------------------------------------------------------------------------- URL rules


@pytest.mark.unit
@pytest.mark.parametrize(
    "base",
    ["http://parhelion-accounting:8080", "http://parhelion-accounting:8080/", "https://hub.example.org"],
)
def test_accounting_urls_are_the_origin_plus_the_prefix(base):
    url = accounting_api(base, AccountingPath.CHECK_SPAWN)
    assert urlsplit(url).path == "/services/accounting/api/v1/check/spawn"
    assert url.startswith(base.rstrip("/") + "/services/accounting/")


@pytest.mark.unit
def test_a_base_that_already_holds_the_prefix_is_refused():
    """The EKS bug: one caller added the prefix, another did not. Now only the helper adds it."""
    with pytest.raises(ValueError, match="prefix"):
        accounting_api("http://127.0.0.1:9000/services/accounting/", AccountingPath.CHECK_SPAWN)
    with pytest.raises(ValueError, match="prefix"):
        gateway_api("http://127.0.0.1:9000/services/dask-gateway", GatewayPath.USAGE)
    with pytest.raises(ValueError, match="no base"):
        accounting_api("", AccountingPath.CHECK_SPAWN)


@pytest.mark.unit
def test_names_in_paths_are_quoted():
    assert AccountingPath.user("a/b@c") == "api/v1/users/a%2Fb%40c"
    assert GatewayPath.stop("x y") == "/api/v1/parhelion/users/x%20y/stop"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("header", "expected", "ok"),
    [
        ("token s3cret", "s3cret", True),
        ("Bearer s3cret", "s3cret", True),
        ("token wrong", "s3cret", False),
        ("basic s3cret", "s3cret", False),
        ("token ", "", False),  # an unset expected token never matches
        (None, "s3cret", False),
        ("token s3cret", "", False),
    ],
)
def test_one_token_rule(header, expected, ok):
    assert tokens.token_matches(header, expected) is ok


@pytest.mark.unit
def test_metering_kinds_are_closed():
    assert labels.metering_metadata("bob@x.org", "dask-worker") == (
        {labels.METERED: "true", labels.KIND: "dask-worker"},
        {labels.USER: "bob@x.org"},
    )
    with pytest.raises(ValueError, match="unknown metered kind"):
        labels.metering_metadata("bob", "pod")


# ---------------------------------------------------------------- the route table


def _handler_for(app, path: str, method: str = "GET"):
    start = tornado.httputil.RequestStartLine(method, path, "HTTP/1.1")
    headers = tornado.httputil.HTTPHeaders({"Host": "127.0.0.1"})
    request = tornado.httputil.HTTPServerRequest(
        start_line=start, headers=headers, connection=SimpleNamespace()
    )
    return app.find_handler(request).handler_class


@pytest.fixture
def accounting_app(tmp_path):
    live_file = tmp_path / "platform.yaml"
    live_file.write_text(PLATFORM)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.migrate()

    class NothingRuns:  # the meter's source is not what these tests are about
        async def observe(self):
            return []

    async def nothing(username: str) -> list[str]:
        return []

    accounting = Accounting(
        LiveConfig(live_file),
        ledger,
        NothingRuns(),
        Actions(nothing, nothing),
        "internal-token",
        services.ACCOUNTING_PREFIX,
    )
    yield accounting
    ledger.close()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("path", "handler"),
    [
        (AccountingPath.HEALTH, "HealthHandler"),
        (AccountingPath.CHECK_SPAWN, "CheckSpawnHandler"),
        (AccountingPath.CHECK_CLUSTER, "CheckClusterHandler"),
        (AccountingPath.USERS, "UsersApiHandler"),
        (AccountingPath.user("a@b.org"), "UserApiHandler"),
        (AccountingPath.quota("demo"), "QuotaApiHandler"),
        (AccountingPath.class_report("summer-school"), "ClassReportHandler"),
        (AccountingPath.METRICS, "MetricsHandler"),
        (AccountingPath.ADMIN, "AdminPageHandler"),
        (AccountingPath.ADMIN_CSV, "AdminCsvHandler"),
        (AccountingPath.spend_page("demo"), "SpendPageHandler"),
        ("", "SpendPageHandler"),
    ],
)
def test_every_path_callers_use_is_in_the_real_route_table(accounting_app, path, handler):
    app = make_app(accounting_app)
    found = _handler_for(app, urlsplit(accounting_api("http://x", path)).path)
    assert found is getattr(accounting_handlers, handler), f"{path!r} reaches {found.__name__}"


@pytest.mark.unit
def test_a_path_the_contract_lacks_is_not_served(accounting_app):
    app = make_app(accounting_app)
    assert _handler_for(app, "/services/accounting/api/v1/check/nothing") is ErrorHandler
    assert _handler_for(app, "/api/v1/check/spawn") is ErrorHandler  # without the prefix


# ---------------------------------------------- callers against a real accounting service


class RunningService:
    """The accounting web app on a free 127.0.0.1 port, in a thread with its own loop."""

    def __init__(self, accounting: Accounting):
        self.accounting = accounting
        self.port = free_tcp_ports(1)[0]
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = make_app(self.accounting).listen(self.port, address="127.0.0.1")
            self.ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()
        self.server.stop()
        self.loop.close()

    def __enter__(self) -> RunningService:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def hub_accounting_url(release: str = "parhelion") -> str:
    """The accounting URL the hub derives from its release (HELM_RELEASE_NAME, which
    zero-to-jupyterhub gives the hub pod): what it registers and what its spawn check calls."""
    return f"http://{names.accounting_service(release)}:{names.ACCOUNTING_PORT}"


def chart_accounting_url(port: int) -> str:
    """The hub's accounting URL, reaching this machine's service instead."""
    return urlsplit(hub_accounting_url())._replace(netloc=f"127.0.0.1:{port}").geturl()


def gateway_accounting_url(port: int) -> str:
    env = {item["name"]: item.get("value") for item in CHART_VALUES["dask-gateway"]["gateway"]["env"]}
    return urlsplit(env["PARHELION_ACCOUNTING_URL"])._replace(netloc=f"127.0.0.1:{port}").geturl()


def spawner(username: str, profile: str | None = None):
    user = SimpleNamespace(name=username, spawners={})
    return SimpleNamespace(user=user, user_options={"profile": profile} if profile else {})


def spend(ledger: Ledger, username: str, usd: float) -> None:
    now = time.time()
    ledger.record_sample(
        now, [Observation(f"server:{username}:1", username, "server", now - 3600, rate_per_hour=usd)]
    )


@pytest.mark.integration
def test_the_hubs_spawn_check_reaches_the_real_service_at_the_charts_url(accounting_app):
    live = accounting_app.live
    with RunningService(accounting_app) as service:
        url = chart_accounting_url(service.port)
        assert asyncio.run(check_spawn(spawner("demo"), live, url, "internal-token")) == "small"
        with pytest.raises(SpawnRefused, match="not available to you"):
            asyncio.run(check_spawn(spawner("demo", "large"), live, url, "internal-token"))
        spend(accounting_app.ledger, "demo", 6.0)  # over the $5 budget
        with pytest.raises(SpawnRefused, match=r"No new server: .*\$5"):
            asyncio.run(check_spawn(spawner("demo"), live, url, "internal-token"))
        # A wrong token is an answer too (403), and budgets fail closed: refused, not allowed.
        with pytest.raises(SpawnRefused, match="does not answer"):
            asyncio.run(check_spawn(spawner("demo"), live, url, "not-the-token"))
    # The hub refused the profile itself; the service recorded the budget refusal it made.
    assert [e.rule for e in accounting_app.ledger.events("demo") if e.action == "refuse"] == ["budget"]


@pytest.mark.integration
def test_the_gateways_budget_check_reaches_the_real_service_at_the_charts_url(accounting_app, tmp_path):
    config = tmp_path / "gateway-platform.yaml"
    config.write_text(PLATFORM)
    with RunningService(accounting_app) as service:
        limits = AggregateLimitsMixin(
            platform_config_path=str(config),
            accounting_url=gateway_accounting_url(service.port),
            accounting_token="internal-token",
        )

        async def checks() -> None:
            async with aiohttp.ClientSession() as session:  # the backend's own, as in setup()
                limits.session = session
                await limits._check_budget("demo")  # allowed: returns
                spend(accounting_app.ledger, "demo", 6.0)
                with pytest.raises(ClusterRefused, match=r"No new Dask cluster"):
                    await limits._check_budget("demo")
                await limits._check_budget("rich")  # no budget

        asyncio.run(checks())


# ------------------------------------------------------ the chart and the hub's registration


@pytest.mark.unit
def test_the_charts_values_use_the_contracts_names():
    hub = CHART_VALUES["jupyterhub"]["hub"]
    assert services.GATEWAY_SERVICE in hub["services"]
    gateway = CHART_VALUES["dask-gateway"]["gateway"]
    assert gateway["prefix"] == services.GATEWAY_PREFIX
    env = {item["name"]: item.get("value") for item in gateway["env"]}
    # the gateway's (values, for release "parhelion") and the hub's (derived) agree
    assert env["PARHELION_ACCOUNTING_URL"] == hub_accounting_url()
    # The values give origins: the helpers add the prefix (a prefixed URL would be refused).
    accounting_api(env["PARHELION_ACCOUNTING_URL"], AccountingPath.CHECK_SPAWN)


@pytest.mark.chart
def test_the_rendered_accounting_service_is_where_the_values_point(tmp_path):
    from tests.chart.charts import LOGIN, chart_copy, helm_in

    helm = helm_in(tmp_path / "helm")
    objects = [d for d in yaml.safe_load_all(helm.template(chart_copy(tmp_path, helm), [LOGIN], [])) if d]
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    url = urlsplit(hub_accounting_url())
    service = by_kind[("Service", url.hostname)]
    port = next(p for p in service["spec"]["ports"] if p["port"] == url.port)
    deployment = by_kind[("Deployment", url.hostname)]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert port["targetPort"] in (*ports, *ports.values())
    # Probes ask the path the contract gives, the process is the module that exists.
    health = urlsplit(accounting_api(url.geturl(), AccountingPath.HEALTH)).path
    assert container["readinessProbe"]["httpGet"]["path"] == health
    assert container["livenessProbe"]["httpGet"]["path"] == health
    module = container["args"][container["args"].index("-m") + 1]
    assert importlib.util.find_spec(module) is not None
    assert module == "platform_tools.services.accounting"
    # The chart's names are the contract's (the CLI finds them through it).
    assert ("ConfigMap", names.platform_configmap("parhelion")) in by_kind
    assert ("StatefulSet", names.placeholder_statefulset("parhelion")) in by_kind


@pytest.mark.unit
def test_chart_names_follow_the_charts_fullname_rule():
    assert names.fullname("parhelion") == "parhelion"
    assert names.fullname("summer-parhelion") == "summer-parhelion"
    assert names.fullname("school") == "school-parhelion"
    assert names.platform_configmap("school") == "school-parhelion-platform"
    assert len(names.fullname("x" * 80)) == 63


def _hub_config(env: dict[str, str], platform_file: Path, monkeypatch):
    from traitlets.config import Config

    from platform_tools.hub.kubernetes import configure_kubernetes_hub

    for key, value in {**CLIENT_SECRET, **env}.items():
        monkeypatch.setenv(key, value)
    # a Kubernetes hub logs people in through an identity provider, never a shared password
    platform = yaml.safe_load(platform_file.read_text())
    platform["hub"]["auth"] = OIDC
    platform_file.write_text(yaml.safe_dump(platform))
    c = Config()
    # zero-to-jupyterhub's own configuration runs first: its culler and a role of its own.
    c.JupyterHub.services = [{"name": "dask-gateway", "display": False}]
    c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "read:users:name"]}]
    configure_kubernetes_hub(c, LiveConfig(platform_file))
    return c


def _release_hub_config(release: str, tmp_path, monkeypatch):
    """The Kubernetes hub's configuration in a pod of ``release``, its URLs derived, not given."""
    platform_file = tmp_path / "platform.yaml"
    platform_file.write_text(PLATFORM)
    monkeypatch.delenv("PARHELION_ACCOUNTING_URL", raising=False)
    env = {"HELM_RELEASE_NAME": release, "PARHELION_ACCOUNTING_TOKEN": "t"}
    return _hub_config(env, platform_file, monkeypatch)


@pytest.mark.unit
def test_the_kubernetes_hub_registers_accounting_at_the_charts_url_with_the_contracts_roles(
    tmp_path, monkeypatch
):
    c = _release_hub_config("parhelion", tmp_path, monkeypatch)
    registered = {s["name"]: s for s in c.JupyterHub.services}
    assert registered[services.ACCOUNTING_SERVICE]["url"] == hub_accounting_url()
    assert registered[services.GATEWAY_SERVICE]["url"] == "http://traefik-parhelion-dask-gateway"
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    for role in ("user", "server"):
        for service in services.PEOPLE_USE:
            assert f"access:services!service={service}" in roles[role]["scopes"]
    assert "read:users:name" in roles["user"]["scopes"]  # zero-to-jupyterhub's grant kept
    accounting = roles[services.ACCOUNTING_SERVICE]
    assert accounting["services"] == [services.ACCOUNTING_SERVICE]
    assert set(accounting["scopes"]) == set(services.SERVICE_SCOPES[services.ACCOUNTING_SERVICE])


@pytest.mark.unit
def test_another_release_name_gives_the_hub_that_releases_services(tmp_path, monkeypatch):
    """Names from the release, as z2jh's get_name and the daskhub chart derive them."""
    c = _release_hub_config("school", tmp_path, monkeypatch)
    registered = {s["name"]: s for s in c.JupyterHub.services}
    assert registered[services.ACCOUNTING_SERVICE]["url"] == "http://school-parhelion-accounting:8080"
    assert registered[services.GATEWAY_SERVICE]["url"] == "http://traefik-school-dask-gateway"
    assert (
        c.KubeSpawner.environment["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://traefik-school-dask-gateway:80"
    )


@pytest.mark.unit
def test_both_backends_grant_the_same_roles(tmp_path, monkeypatch):
    """One function makes the roles: the local hub's are the Kubernetes hub's, plus its own
    culler and admin service."""
    from traitlets.config import Config

    from platform_tools.config import parse_platform
    from platform_tools.hub.local import _configure_services
    from platform_tools.local.runtime import LocalRuntime, Ports
    from platform_tools.local.statedir import StateDir
    from platform_tools.services.local import accounting_service as accounting_process

    platform = parse_platform(PLATFORM)
    state = StateDir(tmp_path / "state")
    state.prepare()
    runtime = LocalRuntime(
        state_dir=str(state.root),
        hub_config_dir="",
        notebooks_dir="",
        proxy_command="",
        public_host="127.0.0.1",
        ports=Ports(*free_tcp_ports(7)),
    )
    local = Config()
    _configure_services(local, platform, runtime, state)
    platform_file = tmp_path / "platform.yaml"
    platform_file.write_text(PLATFORM)
    kube = _hub_config({"PARHELION_ACCOUNTING_TOKEN": "t"}, platform_file, monkeypatch)
    local_roles = {r["name"]: r for r in local.JupyterHub.load_roles}
    kube_roles = {r["name"]: r for r in kube.JupyterHub.load_roles}
    for name in ("server", services.ACCOUNTING_SERVICE):
        assert set(local_roles[name]["scopes"]) == set(kube_roles[name]["scopes"])
    assert set(local_roles["user"]["scopes"]) <= set(kube_roles["user"]["scopes"])
    registered = {s["name"]: s for s in local.JupyterHub.services}
    assert registered[services.ACCOUNTING_SERVICE]["url"] == runtime.accounting_url
    # External, as on Kubernetes: `parhelion up` starts it (the hub polled its own every 30 s),
    # with the token the hub registered and the OAuth client the hub makes from the URL.
    accounting = registered[services.ACCOUNTING_SERVICE]
    assert "command" not in accounting
    started = accounting_process(runtime, state)
    assert started.process.argv[-1] == "platform_tools.services.accounting" and started.restartable
    env = started.process.env
    assert env["JUPYTERHUB_API_TOKEN"] == accounting["api_token"]
    assert env["JUPYTERHUB_API_URL"] == runtime.hub_api_url
    assert env["JUPYTERHUB_CLIENT_ID"] == f"service-{services.ACCOUNTING_SERVICE}"
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == f"{services.ACCOUNTING_PREFIX}oauth_callback"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == services.ACCOUNTING_PREFIX


# ------------------------------------------------------------ the gateway's own routes


@pytest.mark.unit
@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", GatewayPath.USAGE, "_usage_route"),
        ("POST", GatewayPath.stop("bob@example.org"), "_stop_route"),
        ("GET", GatewayPath.room("a1b2c3"), "_room_route"),
    ],
)
def test_the_gateways_routes_serve_the_paths_its_callers_build(method, path, route):
    """The accounting service (usage, stop) and burst (room) build these paths from the
    contract; the gateway backend registers its routes from it. The aiohttp router resolves
    each caller's path to the route meant for it."""
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    limits = AggregateLimitsMixin()
    app = web.Application()
    limits.add_parhelion_routes(app)
    match = asyncio.run(app.router.resolve(make_mocked_request(method, path, app=app)))
    assert match.http_exception is None, f"{method} {path}: {match.http_exception}"
    assert match.handler.__name__ == route  # api_handler keeps the wrapped route's name


@pytest.mark.unit
@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", DashboardPath.dashboard("parhelion.0a1b2c", "status"), "_dashboard_route"),
        ("GET", DashboardPath.dashboard("0a1b2c", "individual-workers/ws"), "_dashboard_route"),
        ("POST", DashboardPath.dashboard("0a1b2c", "individual-plots.json"), "_dashboard_route"),
        ("GET", DashboardPath.OAUTH_CALLBACK, "_dashboard_oauth_callback"),
    ],
)
def test_the_dashboard_gate_serves_the_paths_the_contract_builds(method, path, route):
    """dask-gateway's clients link dashboards at ``PREFIX/clusters/NAME/``; its proxies strip the
    prefix; the hub sends the gate's OAuth logins to ``PREFIX/oauth_callback``. The gate's
    routes resolve each of them (Kubernetes cluster names carry their namespace and a dot)."""
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from platform_tools.gateway.dashboards import DashboardGateMixin

    app = web.Application()
    DashboardGateMixin().add_dashboard_routes(app)
    match = asyncio.run(app.router.resolve(make_mocked_request(method, path, app=app)))
    assert match.http_exception is None, f"{method} {path}: {match.http_exception}"
    assert match.handler.__name__ == route


@pytest.mark.unit
def test_a_prefixed_accounting_url_is_refused_at_configuration():
    from traitlets import TraitError

    with pytest.raises(TraitError, match="PARHELION_ACCOUNTING_URL"):
        AggregateLimitsMixin(accounting_url="http://parhelion-accounting:8080/services/accounting/")


def test_an_external_services_oauth_is_what_the_hub_registers_for_it(monkeypatch):
    """HubOAuth in the accounting Deployment (no hub starts it on Kubernetes) asks for the
    client JupyterHub makes for a service registered by URL: ``service-NAME`` and its prefix's
    callback; the rehearsal (tests/rehearsal) logs a person in through both."""
    from jupyterhub.services.auth import HubOAuth

    from platform_tools.contract.services import ACCOUNTING_PREFIX, ACCOUNTING_SERVICE, external_service_oauth

    for key, value in external_service_oauth(ACCOUNTING_SERVICE).items():
        monkeypatch.setenv(key, value)
    auth = HubOAuth(api_token="t", api_url="http://hub:8081/hub/api")
    assert auth.oauth_client_id == "service-accounting"
    assert auth.oauth_redirect_uri == ACCOUNTING_PREFIX + "oauth_callback"
    assert auth.access_scopes == {"access:services!service=accounting"}


@pytest.mark.parametrize(
    ("https", "origin"),
    [
        ({}, "http://proxy-public"),
        ({"enabled": True, "type": "offload"}, "http://proxy-public:443"),
        ({"enabled": True, "type": "letsencrypt", "hosts": ["hub.example.org"]}, "http://proxy-http:8000"),
        ({"enabled": True, "hosts": ["hub.example.org"]}, "http://proxy-http:8000"),  # its default type
        ({"enabled": True, "type": "letsencrypt"}, "http://proxy-public"),  # no hosts: no HTTPS at all
        ({"enabled": True, "type": "secret", "hosts": ["hub.example.org"]}, "https://hub.example.org"),
        ({"enabled": True, "type": "manual", "hosts": ["a.example.org", "b"]}, "https://a.example.org"),
    ],
)
def test_servers_reach_the_proxy_where_it_serves_them(https, origin):
    from platform_tools.contract.names import proxy_origin

    assert proxy_origin({"https": https}) == origin


def test_a_proxy_origin_that_cannot_be_known_is_named():
    from platform_tools.contract.names import proxy_origin

    with pytest.raises(ValueError, match=r"type is 'secret' but proxy.https.hosts is empty"):
        proxy_origin({"https": {"enabled": True, "type": "secret"}})
    with pytest.raises(ValueError, match=r"'tls' is not one of zero-to-jupyterhub's"):
        proxy_origin({"https": {"enabled": True, "type": "tls"}})


@pytest.mark.unit
def test_the_gateways_public_address_is_the_hubs_public_origin_plus_the_prefix():
    """Dashboard links are absolute (dask-labextension resolves root-relative ones under the
    user's server); a base with a path, or no scheme, is a mistake caught at configuration."""
    assert services.gateway_public_address("https://hub.example.org") == (
        f"https://hub.example.org{services.GATEWAY_PREFIX}/"
    )
    assert (
        services.gateway_public_address("http://127.0.0.1:8000/")
        == "http://127.0.0.1:8000/services/dask-gateway/"
    )
    for wrong in (
        "hub.example.org",
        "https://hub.example.org/services/dask-gateway",
        "/services/dask-gateway",
    ):
        with pytest.raises(ValueError):
            services.gateway_public_address(wrong)
