"""The chart, rendered offline by the real helm binary, for the default and every example values
file; validated for Kubernetes, scanned by checkov, and read back as objects.

The chart renders with its REAL dependencies, zero-to-jupyterhub and dask-gateway
(tests/chart/charts.py): every assertion holds for upstream's objects too, through values.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from platform_tools.chart.helm import Helm, HelmError
from platform_tools.chart.values import SCHEMA_PATH, render_schema
from platform_tools.config import parse_platform
from tests.chart.charts import CHART, LOGIN, chart_copy, helm_in, with_login
from tests.platform import REPO_ROOT

pytestmark = pytest.mark.chart

STAND_INS = Path(__file__).parent / "stand-ins"
KUBERNETES_VERSION = "1.33.0"  # the EKS version the chart is validated for
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
CHECKOV = REPO_ROOT / ".venv-tools" / "checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def helm(tmp_path_factory) -> Helm:
    return helm_in(tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def chart(tmp_path_factory, helm) -> Path:
    return chart_copy(tmp_path_factory.mktemp("chart"), helm)


def render(helm: Helm, chart: Path, values: list[Path] = (), *sets: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(helm.template(chart, with_login(values), list(sets))) if doc]


def containers(objects: list[dict]):
    for obj in objects:
        spec = obj.get("spec", {}).get("template", {}).get("spec")
        if spec:
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                yield obj, spec, container


VALUES = [pytest.param([], id="default"), *[pytest.param([p], id=p.stem) for p in EXAMPLES]]


def test_schema_is_generated_from_the_models():
    assert SCHEMA_PATH.read_text() == render_schema(), "stale: run `parhelion chart schema --write`"


@pytest.mark.parametrize("values", VALUES)
def test_lint_and_render(helm, chart, values):
    helm.lint(chart, with_login(values))
    kinds = {obj["kind"] for obj in render(helm, chart, values)}
    assert {"ConfigMap", "Deployment", "NetworkPolicy", "PriorityClass", "Role"} <= kinds
    karpenter = {"NodePool", "EC2NodeClass"}
    on_eks = not values or yaml.safe_load(values[0].read_text()).get("karpenter", {}).get("enabled", True)
    assert karpenter <= kinds if on_eks else not karpenter & kinds


def test_a_null_node_selector_runs_the_accounting_service_anywhere(helm, chart):
    def selector(*sets: str):
        deployment = _named(render(helm, chart, [], *sets), "Deployment")["parhelion-accounting"]
        return deployment["spec"]["template"]["spec"].get("nodeSelector")

    assert selector() == {"parhelion.dev/pool": "core"}
    assert selector("accounting.nodeSelector=null") is None


@pytest.mark.parametrize("values", VALUES)
def test_manifests_are_valid_kubernetes(helm, chart, values, tmp_path):
    path = tmp_path / "rendered.yaml"
    path.write_text(helm.template(chart, with_login(values)))
    validate = Path(sys.executable).parent / "kubernetes-validate"
    done = subprocess.run(
        [str(validate), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("ERROR")]
    assert done.returncode == 0 and not errors, done.stdout + done.stderr


@pytest.mark.parametrize("values", VALUES)
def test_checkov_passes(helm, chart, values, tmp_path):
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make test` installs checkov in its own venv")
    (tmp_path / "rendered.yaml").write_text(helm.template(chart, with_login(values)))
    done = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--quiet",
            "--compact",
            "--config-file",
            str(CHART / ".checkov.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values", VALUES)
def test_every_container_is_bounded_and_unprivileged(helm, chart, values):
    objects = render(helm, chart, values, "placeholders.replicas=2")
    seen = 0
    for obj, spec, container in containers(objects):
        seen += 1
        name = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
        resources = container.get("resources", {})
        assert {"cpu", "memory"} <= set(resources.get("requests", {})), name
        assert {"cpu", "memory"} <= set(resources.get("limits", {})), name
        pod = spec.get("securityContext", {})
        security = container.get("securityContext", {})
        assert security.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, name
        assert security.get("allowPrivilegeEscalation") is False, name
        image = container["image"]
        assert ":" in image and not image.endswith(":latest"), name
        assert "ALL" in security.get("capabilities", {}).get("drop", []), name
        if obj["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "parhelion":
            assert security.get("readOnlyRootFilesystem") is True, name  # ours: read-only
    assert seen >= 9  # Parhelion's, zero-to-jupyterhub's and dask-gateway's


def test_no_role_of_the_release_uses_wildcards(helm, chart):
    """dask-gateway's own controller role grants "*" on DaskClusters; Parhelion's replaces it."""
    objects = render(helm, chart)
    for obj in objects:
        if obj["kind"] in ("Role", "ClusterRole"):
            for rule in obj.get("rules", []):
                for key in ("verbs", "resources", "apiGroups"):
                    assert "*" not in rule.get(key, []), f"{obj['kind']}/{obj['metadata']['name']}: {rule}"
    controller = _named(objects, "Deployment")["controller-parhelion-dask-gateway"]
    account = controller["spec"]["template"]["spec"]["serviceAccountName"]
    assert account in _named(objects, "ServiceAccount")
    binding = next(
        o for o in objects if o["kind"] == "ClusterRoleBinding" and o["subjects"][0]["name"] == account
    )
    rules = _named(objects, "ClusterRole")[binding["roleRef"]["name"]]["rules"]
    assert {"get", "list", "watch", "patch"} <= set(rules[0]["verbs"])


def test_exactly_these_roles_read_secrets(helm, chart):
    """Namespaced: the hub (KubeSpawner manages users' Secrets) and the gateway API (each Dask
    cluster's TLS Secret; upstream's cluster-wide grant narrowed by Parhelion). Cluster-wide:
    only traefik, as the dask-gateway chart grants it (its CRD provider watches TLS Secrets in
    every namespace) - a known upstream grant, not narrowed yet. Any other reader fails here."""
    objects = render(helm, chart)
    readers = {
        (obj["kind"], obj["metadata"]["name"])
        for obj in objects
        if obj["kind"] in ("Role", "ClusterRole")
        for rule in obj.get("rules", [])
        if "secrets" in rule.get("resources", [])
        and {"get", "list", "watch"} & set(rule.get("verbs", []))
        and not rule.get("resourceNames")
    }
    assert readers == {
        ("Role", "hub"),
        ("Role", "parhelion-dask-gateway-api-secrets"),
        ("ClusterRole", "traefik-parhelion-dask-gateway"),
    }


def test_the_pre_puller_pulls_the_platforms_images(helm, chart):
    """Every image platform.yaml names is pulled onto each node as it joins, none other."""
    objects = render(helm, chart)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    puller = _named(objects, "DaemonSet")["continuous-image-puller"]["spec"]["template"]["spec"]
    pulled = {c["image"] for c in puller["initContainers"]}
    assert pulled == set(values["platform"]["images"].values()) | {
        f"{i['name']}:{i['tag']}" for i in values["jupyterhub"]["prePuller"]["extraImages"].values()
    }
    assert "hook-image-puller" not in _named(objects, "DaemonSet")  # upgrades never wait on pulls


def test_user_pods_never_reach_the_metadata_endpoint(helm, chart):
    objects = render(helm, chart)
    egress = next(
        o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("user-egress")
    )
    assert egress["spec"]["podSelector"] == {"matchLabels": {"parhelion.dev/metered": "true"}}
    blocks = [
        to["ipBlock"] for rule in egress["spec"]["egress"] for to in rule.get("to", []) if "ipBlock" in to
    ]
    assert blocks and all("169.254.169.254/32" in block["except"] for block in blocks)


def test_only_the_dask_pool_uses_spot_with_on_demand_fallback_and_is_tainted(helm, chart):
    """Dask workers: spot first, on-demand when spot capacity is short (Karpenter prefers spot
    when a pool allows both); core and users pools never spot."""
    pools = {o["metadata"]["name"]: o for o in render(helm, chart) if o["kind"] == "NodePool"}
    assert set(pools) == {"parhelion-core", "parhelion-users", "parhelion-dask-workers"}
    for name, pool in pools.items():
        spec = pool["spec"]["template"]["spec"]
        capacity = next(r["values"] for r in spec["requirements"] if r["key"] == "karpenter.sh/capacity-type")
        tainted = any(t["key"] == "parhelion.dev/dask-worker" for t in spec.get("taints", []))
        expected = ["spot", "on-demand"] if name == "parhelion-dask-workers" else ["on-demand"]
        assert capacity == expected and tainted == (name == "parhelion-dask-workers"), name
        assert pool["spec"]["limits"]["cpu"] and pool["spec"]["limits"]["memory"]
    workers = pools["parhelion-dask-workers"]
    assert workers["spec"]["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    families = next(
        r["values"]
        for r in workers["spec"]["template"]["spec"]["requirements"]
        if r["key"].endswith("instance-family")
    )
    assert len(families) >= 3


@pytest.mark.parametrize("values", VALUES)
def test_nodes_keep_pods_from_their_credentials_without_privileged_init_containers(helm, chart, values):
    """Users' pods have no iptables init container (zero-to-jupyterhub's is privileged); what
    stands in its place is the users' NetworkPolicy (test_flows) and, on every node Karpenter
    launches, IMDSv2 with a hop limit of 1: a pod's packets take a second hop and never get a
    token."""
    objects = render(helm, chart, values)
    for node_class in (o for o in objects if o["kind"] == "EC2NodeClass"):
        assert node_class["spec"]["metadataOptions"] == {
            "httpEndpoint": "enabled",
            "httpTokens": "required",
            "httpPutResponseHopLimit": 1,
        }
    hub_values = yaml.safe_load(base64.b64decode(_named(objects, "Secret")["hub"]["data"]["values.yaml"]))
    assert hub_values["singleuser"]["cloudMetadata"]["blockWithIptables"] is False
    for _, _, container in containers(objects):
        assert not container.get("securityContext", {}).get("privileged"), container["name"]
        assert "NET_ADMIN" not in str(container.get("securityContext", {})), container["name"]


def test_karpenters_nodes_carry_the_cost_allocation_tag(helm, chart):
    """What Karpenter launches is tagged parhelion.dev/cluster (the cluster's name unless given),
    with the deployment's other tags: Cost Explorer and budgets filter by it."""

    def tags(*sets: str) -> dict:
        (node_class,) = [o for o in render(helm, chart, [], *sets) if o["kind"] == "EC2NodeClass"]
        return node_class["spec"]["tags"]

    assert tags() == {"parhelion.dev/cluster": "parhelion"}
    assert tags("karpenter.clusterName=astro", "karpenter.tags.owner=team@example.org") == {
        "parhelion.dev/cluster": "astro",
        "owner": "team@example.org",
    }
    assert tags("karpenter.tags.parhelion\\.dev/cluster=astro-prod") == {
        "parhelion.dev/cluster": "astro-prod"
    }
    # the chart's ClusterRole lets the meter list every namespace's pods (capacity rows): list
    # only, no get or watch of other namespaces' pod specs
    (role,) = [
        o
        for o in render(helm, chart)
        if o["kind"] == "ClusterRole" and o["metadata"]["name"].startswith("parhelion-accounting")
    ]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    ]


def test_the_hubs_database_claim_names_the_charts_storage_class(helm, chart):
    """EKS's default class is gp2 (or none): the hub's claim asks for the class the chart makes."""
    objects = render(helm, chart)
    claim = _named(objects, "PersistentVolumeClaim")["hub-db-dir"]
    assert claim["spec"]["storageClassName"] == "gp3"
    assert "gp3" in _named(objects, "StorageClass")


@pytest.mark.parametrize("values", VALUES)
def test_the_configmap_is_the_validated_platform(helm, chart, values):
    configmap = _named(render(helm, chart, values), "ConfigMap")["parhelion-platform"]
    rendered = parse_platform(configmap["data"]["platform.yaml"])
    source = yaml.safe_load((values[0] if values else CHART / "values.yaml").read_text())["platform"]
    if not values:  # the defaults, with the login every admin adds
        source["hub"]["auth"] = yaml.safe_load(LOGIN.read_text())["platform"]["hub"]["auth"]
    assert rendered == parse_platform(yaml.safe_dump(source))


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "platform.profiles.small.cpu_limit=many",
            "at '/platform/profiles/small/cpu_limit': got string, want number",
        ),
        ("accounting.databse.size=1Gi", "at '/accounting': additional properties 'databse' not allowed"),
        (
            "platform.profiles.small.image=nope",
            'platform.profiles.small.image: unknown image "nope" (images: helio)',
        ),
        ("platform.dask_gateway.image=nope", 'platform.dask_gateway.image: unknown image "nope"'),
    ],
    ids=["wrong-type", "misspelt-key", "unknown-image", "unknown-gateway-image"],
)
def test_bad_values_fail_naming_the_field(helm, chart, setting, message):
    with pytest.raises(HelmError) as failure:
        render(helm, chart, [], setting)
    assert message in str(failure.value)


def _named(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.mark.parametrize("values", VALUES)
def test_servers_reach_the_hubs_proxy_where_zero_to_jupyterhub_serves_plain_http(helm, chart, values):
    """Users' servers reach dask-gateway and the accounting service through the hub's proxy. The
    chart requires HTTPS, and http://proxy-public was wrong for every way of serving it: port 80
    disabled (offload), traefik's redirect to HTTPS (letsencrypt), the proxy's own TLS with an
    HTTP port that only redirects (secret). The origin the hub derives from zero-to-jupyterhub's
    values (as its hub pod reads them) must be a plain-HTTP port of the proxy pod, or its TLS
    name."""
    from platform_tools.contract.names import proxy_origin

    objects = render(helm, chart, values)
    secret = _named(objects, "Secret")["hub"]
    proxy = yaml.safe_load(base64.b64decode(secret["data"]["values.yaml"]))["proxy"]
    origin = proxy_origin(proxy)
    services = _named(objects, "Service")
    pod_ports = {
        p["name"]: p["containerPort"]
        for p in _named(objects, "Deployment")["proxy"]["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    command = _named(objects, "Deployment")["proxy"]["spec"]["template"]["spec"]["containers"][0]["command"]
    if origin.startswith("https://"):  # the proxy's TLS, for the name its certificate is for
        assert any(a.startswith("--ssl-cert=") for a in command)
        assert origin == f"https://{proxy['https']['hosts'][0]}"
        return
    host, _, port = origin.removeprefix("http://").partition(":")
    service = services[host]
    assert service["spec"]["selector"]["component"] == "proxy", "not the proxy pod (traefik redirects)"
    (target,) = [p["targetPort"] for p in service["spec"]["ports"] if p["port"] == int(port or 80)]
    assert pod_ports[target] == 8000 and "--port=8000" in command  # plain HTTP, no redirect there


def test_the_gateway_and_hub_values_name_what_the_chart_renders(helm, chart):
    """The upstream charts' values cannot be templated, so they name Parhelion's objects by
    their rendered names (release "parhelion"): those names must exist, and the dask-gateway
    ones must be the names that chart gives (api-<release>-dask-gateway, traefik-...)."""
    objects = render(helm, chart)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    gateway = values["dask-gateway"]["gateway"]
    env = {e["name"]: e for e in gateway["env"]}
    configmap = env["PARHELION_CONFIG_YAML"]["valueFrom"]["configMapKeyRef"]
    assert configmap["name"] in _named(objects, "ConfigMap") and configmap["key"] == "platform.yaml"
    assert env["PARHELION_CONFIG_CONFIGMAP"]["value"] == configmap["name"]
    token = env["PARHELION_ACCOUNTING_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["name"] in _named(objects, "Secret") and token["key"] == "token"
    service = _named(objects, "Service")
    assert env["PARHELION_ACCOUNTING_URL"]["value"] == "http://parhelion-accounting:8080"
    assert service["parhelion-accounting"]["spec"]["ports"][0]["port"] == 8080
    assert "url" not in values["jupyterhub"]["hub"]["services"]["dask-gateway"]  # the hub derives it
    assert gateway["auth"]["type"] == "jupyterhub"
    # The dask-gateway chart really renders the name the hub derives for its traefik Service
    from platform_tools.contract.names import gateway_traefik

    assert gateway_traefik("parhelion") in service
    api = _named(objects, "Deployment")["api-parhelion-dask-gateway"]["spec"]["template"]["spec"]
    account = api["serviceAccountName"]
    assert account in _named(objects, "ServiceAccount")
    assert gateway["prefix"] == "/services/dask-gateway"

    roles, bindings = _named(objects, "Role"), _named(objects, "RoleBinding")
    rule = roles["parhelion-gateway-platform"]["rules"]
    assert rule == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [configmap["name"]],
            "verbs": ["get"],
        }
    ]
    subject = bindings["parhelion-gateway-platform"]["subjects"]
    assert subject == [{"kind": "ServiceAccount", "name": account, "namespace": "parhelion"}]


def test_dask_dashboards_are_routed_to_the_gate_on_the_gateways_api(helm, chart):
    """Every dashboard path goes to the gateway's API server (Parhelion's gate) ahead of the
    per-cluster routes dask-gateway's controller makes straight to schedulers: the route names
    the API Service and the prefix middleware the dask-gateway chart really renders, under the
    prefix the contract's paths sit under; without the gateway there is no route."""
    from platform_tools.contract.services import GATEWAY_PREFIX

    objects = render(helm, chart)
    routes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "IngressRoute"}
    middlewares = {o["metadata"]["name"] for o in objects if o["kind"] == "Middleware"}
    route = routes["parhelion-dask-dashboards"]["spec"]["routes"][0]
    assert route["match"] == f"PathPrefix(`{GATEWAY_PREFIX}/clusters/`)"
    # the controller's rules are PathPrefix(`.../clusters/NAMESPACE.NAME/`): Traefik would rank
    # them by length above ours without an explicit priority
    assert route["priority"] > len(f"PathPrefix(`{GATEWAY_PREFIX}/clusters/{'n' * 63}.{'c' * 63}/`)")
    assert [s["name"] for s in route["services"]] == ["api-parhelion-dask-gateway"]
    assert route["services"][0]["port"] == 8000
    assert "api-parhelion-dask-gateway" in _named(objects, "Service")
    assert [m["name"] for m in route["middlewares"]] == ["api-prefix-parhelion-dask-gateway"]
    assert "api-prefix-parhelion-dask-gateway" in middlewares
    # the gateway's traefik reads only routes its label selector matches
    traefik = _named(objects, "Deployment")["traefik-parhelion-dask-gateway"]["spec"]["template"]["spec"]
    selector = next(
        arg.split("=", 1)[1]
        for arg in traefik["containers"][0]["args"]
        if arg.startswith("--providers.kubernetescrd.labelselector=")
    )
    key, value = selector.split("=", 1)
    assert routes["parhelion-dask-dashboards"]["metadata"]["labels"][key] == value
    # the gateway chart's own API route strips the same prefix for the gate's OAuth callback
    api_route = routes["api-parhelion-dask-gateway"]["spec"]["routes"][0]
    assert api_route["match"] == f"PathPrefix(`{GATEWAY_PREFIX}`)"
    without = render(helm, chart, [], "dask-gateway.enabled=false")
    assert not [o for o in without if o["kind"] == "IngressRoute"]


def test_without_the_gateway_its_role_is_not_rendered(helm, chart):
    objects = render(helm, chart, [], "dask-gateway.enabled=false")
    assert "parhelion-gateway-platform" not in _named(objects, "Role")
    objects = render(helm, chart, [], "dask-gateway.rbac.gateway.serviceAccountName=my-gateway")
    subject = _named(objects, "RoleBinding")["parhelion-gateway-platform"]["subjects"][0]
    assert subject["name"] == "my-gateway"


def test_core_pods_land_on_the_core_pool(helm, chart):
    """zero-to-jupyterhub's core pods require hub.jupyter.org/node-purpose=core: only the
    on-demand core pool's nodes carry it; the users pool is its "user" purpose."""
    pools = _named(render(helm, chart), "NodePool")
    purpose = {
        name: pool["spec"]["template"]["metadata"]["labels"].get("hub.jupyter.org/node-purpose")
        for name, pool in pools.items()
    }
    assert purpose == {"parhelion-core": "core", "parhelion-users": "user", "parhelion-dask-workers": None}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["jupyterhub"]["scheduling"]["corePods"]["nodeAffinity"]["matchNodePurpose"] == "require"
    assert all(
        values["dask-gateway"][part]["nodeSelector"] == {"parhelion.dev/pool": "core"}
        for part in ("gateway", "controller", "traefik")
    )


def test_the_accounting_service_writes_only_the_placeholders(helm, chart):
    """Read-only on pods and claims; its one write is scaling the class placeholders, which
    exist (at 0 replicas) in every rendering so that a class can be prewarmed."""
    objects = render(helm, chart)
    rules = _named(objects, "Role")["parhelion-accounting"]["rules"]
    writes = [r for r in rules if set(r["verbs"]) - {"get", "list", "watch"}]
    placeholders = _named(objects, "StatefulSet")
    assert set(placeholders) == {"parhelion-placeholder"}
    assert placeholders["parhelion-placeholder"]["spec"]["replicas"] == 0
    assert writes == [
        {
            "apiGroups": ["apps"],
            "resources": ["statefulsets"],
            "resourceNames": ["parhelion-placeholder"],
            "verbs": ["get", "patch"],
        }
    ]
    deployment = _named(objects, "Deployment")["parhelion-accounting"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PARHELION_PLACEHOLDERS"] == "parhelion-placeholder"


def test_the_accounting_service_reaches_the_gateway_to_stop_clusters(helm, chart):
    """Dollar caps stop Dask clusters on EKS too: the enforcer is given the gateway's proxy,
    the Service the dask-gateway chart really renders; without the gateway, no URL."""
    from platform_tools.contract.services import GatewayPath, gateway_api
    from platform_tools.services.accounting.factory import Settings

    def accounting_env(*sets):
        objects = render(helm, chart, [], *sets)
        container = _named(objects, "Deployment")["parhelion-accounting"]["spec"]["template"]["spec"]
        return objects, {e["name"]: e.get("value") for e in container["containers"][0]["env"]}

    objects, env = accounting_env()
    url = env["PARHELION_GATEWAY_URL"]
    assert url.removeprefix("http://") in _named(objects, "Service")
    settings = Settings.kubernetes(
        {**{k: v or "x" for k, v in env.items()}, "JUPYTERHUB_API_TOKEN": "t", "PARHELION_CONFIG": "/p"}
    )
    assert settings.gateway_url == url
    assert gateway_api(url, GatewayPath.stop("amy")).endswith(
        "/services/dask-gateway/api/v1/parhelion/users/amy/stop"
    )
    assert "PARHELION_GATEWAY_URL" not in accounting_env("dask-gateway.enabled=false")[1]


def test_another_release_name_is_refused_until_the_values_follow_it(helm, chart, tmp_path):
    """The upstream values name Parhelion's objects as release "parhelion" renders them: under
    another name rendering stops and says what to set; with those set, every reference holds."""
    with pytest.raises(HelmError) as refused:
        helm.template(chart, [LOGIN], release="school")
    message = str(refused.value)
    assert 'release "school" names the platform ConfigMap "school-parhelion-platform"' in message
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    hub, gateway = values["jupyterhub"]["hub"], values["dask-gateway"]["gateway"]
    for volume in hub["extraVolumes"]:
        volume["configMap"]["name"] = "school-parhelion-platform"
    for item in gateway["env"]:
        if item["name"] == "PARHELION_CONFIG_CONFIGMAP":
            item["value"] = "school-parhelion-platform"
        if item["name"] == "PARHELION_ACCOUNTING_URL":
            item["value"] = "http://school-parhelion-accounting:8080"
        if "configMapKeyRef" in item.get("valueFrom", {}):
            item["valueFrom"]["configMapKeyRef"]["name"] = "school-parhelion-platform"
    override = tmp_path / "school.yaml"
    override.write_text(
        yaml.safe_dump(
            {
                "jupyterhub": {"hub": {"extraVolumes": hub["extraVolumes"]}},
                "dask-gateway": {"gateway": {"env": gateway["env"]}},
            }
        )
    )
    objects = [d for d in yaml.safe_load_all(helm.template(chart, [LOGIN, override], release="school")) if d]
    assert "school-parhelion-platform" in _named(objects, "ConfigMap")
    assert "school-parhelion-accounting" in _named(objects, "Service")
    assert "traefik-school-dask-gateway" in _named(objects, "Service")


# ------------------------------------------------------------------- logins and HTTPS


@pytest.mark.parametrize(
    ("values", "sets", "says"),
    [
        pytest.param([], [], 'platform.hub.auth.type is "shared-password"', id="no-login"),
        pytest.param(
            [LOGIN],
            ["jupyterhub.hub.config.JupyterHub.authenticator_class=dummy"],
            'authenticator_class is "dummy"',
            id="dummy-authenticator",
        ),
        pytest.param(
            [], ["platform.hub.auth.type=shared-password"], "hub.auth.type is", id="shared-password"
        ),
        pytest.param(
            [LOGIN], ["jupyterhub.proxy.https.enabled=false"], "https.enabled is false", id="no-https"
        ),
        pytest.param(
            [LOGIN],
            ["jupyterhub.proxy.service.disableHttpPort=false"],
            "still serves plain HTTP",
            id="offload-http",
        ),
        pytest.param(
            [LOGIN],
            ["jupyterhub.proxy.service.annotations=null"],
            "offload but nothing terminates TLS",
            id="offload-without-a-certificate",
        ),
        pytest.param(
            [LOGIN],
            ["jupyterhub.hub.config.Authenticator.allow_all=true"],
            "jupyterhub.hub.config.Authenticator is set",
            id="allow-all",
        ),
        pytest.param(
            [LOGIN],
            ["jupyterhub.hub.config.GitHubOAuthenticator.allowed_organizations={lab}"],
            "jupyterhub.hub.config.GitHubOAuthenticator is set",
            id="upstream-allow-rule",
        ),
        pytest.param(
            [CHART / "examples" / "prod.yaml"],
            ["jupyterhub.proxy.https.hosts=null"],
            'callback_url\'s host "hub.example.org" is not in jupyterhub.proxy.https.hosts',
            id="given-certificate-without-hosts",
        ),
        pytest.param(
            [LOGIN],
            [
                "jupyterhub.proxy.https.type=letsencrypt",
                "jupyterhub.proxy.https.hosts={other.example.org}",
                "jupyterhub.proxy.https.letsencrypt.contactEmail=admin@example.org",
            ],
            'callback_url\'s host "hub.example.org" is not in jupyterhub.proxy.https.hosts',
            id="certificate-for-another-host",
        ),
    ],
)
def test_a_hub_anyone_could_enter_is_refused_at_render_time(helm, chart, values, sets, says):
    """No dummy or shared-password login, no login page in clear text: `helm install` stops
    and names the value to set."""
    with pytest.raises(HelmError) as refused:
        helm.template(chart, values, sets)
    assert says in str(refused.value)


def test_plain_http_only_where_platform_yaml_allows_it(helm, chart):
    """A throw-away test cluster (the k3s workflow) may serve plain HTTP, if platform.yaml says so."""
    insecure = ["jupyterhub.proxy.https.enabled=false", "platform.hub.auth.allow_plain_http=true"]
    objects = render(helm, chart, [LOGIN], *insecure)
    configmap = _named(objects, "ConfigMap")["parhelion-platform"]
    assert parse_platform(configmap["data"]["platform.yaml"]).hub.auth.allow_plain_http is True


def test_lets_encrypt_serves_https_and_redirects_http(helm, chart):
    """examples/dev.yaml: zero-to-jupyterhub's autohttps (traefik) holds the certificate for
    the callback's host; proxy-public sends both ports to it, and it redirects HTTP to HTTPS."""
    objects = render(helm, chart, [CHART / "examples" / "dev.yaml"])
    service = _named(objects, "Service")["proxy-public"]
    assert service["spec"]["selector"]["component"] == "autohttps"
    assert {p["name"] for p in service["spec"]["ports"]} == {"http", "https"}
    dynamic = yaml.safe_load(_named(objects, "ConfigMap")["autohttps"]["data"]["dynamic.yaml"])
    insecure = dynamic["http"]["routers"]["insecure"]
    assert insecure["entrypoints"] == ["http"] and insecure["middlewares"] == ["redirect"]
    assert dynamic["http"]["middlewares"]["redirect"]["redirectScheme"]["scheme"] == "https"
    assert [d["main"] for d in dynamic["http"]["routers"]["default"]["tls"]["domains"]] == [
        "dev.hub.example.org"
    ]


def test_a_given_certificate_is_served_by_the_proxy_with_http_redirected(helm, chart):
    """examples/prod.yaml: the certificate from a TLS Secret; configurable-http-proxy serves it
    and redirects its HTTP port to 443."""
    objects = render(helm, chart, [CHART / "examples" / "prod.yaml"])
    proxy = _named(objects, "Deployment")["proxy"]["spec"]["template"]["spec"]
    command = proxy["containers"][0]["command"]
    assert "--redirect-to=443" in command and any(a.startswith("--ssl-cert=") for a in command)
    assert "hub-example-org-tls" in {v["secret"]["secretName"] for v in proxy["volumes"] if "secret" in v}


def test_the_hub_reads_the_client_secret_from_a_secret_and_no_dummy_authenticator(helm, chart):
    """What the hub pod gets: OAUTH_CLIENT_SECRET from the Secret parhelion-oauth (never in the
    platform ConfigMap) and zero-to-jupyterhub's values without its dummy authenticator."""
    objects = render(helm, chart)
    hub = _named(objects, "Deployment")["hub"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in hub["env"]}
    assert env["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "parhelion-oauth",
        "key": "client-secret",
    }
    secret = _named(objects, "Secret")["hub"]
    values = yaml.safe_load(base64.b64decode(secret["data"]["values.yaml"]))
    assert "authenticator_class" not in values["hub"]["config"].get("JupyterHub", {})
    assert "secret" not in _named(objects, "ConfigMap")["parhelion-platform"]["data"]["platform.yaml"]


def test_the_k3s_workflows_install_renders_here(helm, chart):
    """The workflow's own helm command (its values and --set-string lines, read from the file)
    renders offline: a typo there is found by `make test`, not on a runner."""
    import re
    import shlex

    workflow = (REPO_ROOT / ".github" / "workflows" / "chart-k3s.yaml").read_text()
    install = next(
        step["run"]
        for job in yaml.safe_load(workflow)["jobs"].values()
        for step in job["steps"]
        if "helm upgrade --install" in step.get("run", "")
    )
    words = shlex.split(install.replace("\\\n", " ").replace("$HOST_IP", "10.1.0.4"))
    values = [REPO_ROOT / words[i + 1] for i, word in enumerate(words) if word == "--values"]
    sets = [words[i + 1] for i, word in enumerate(words) if word == "--set-string"]
    assert values == [CHART / "examples" / "k3s.yaml"] and sets
    objects = [doc for doc in yaml.safe_load_all(helm.template(chart, values, sets)) if doc]
    platform = parse_platform(_named(objects, "ConfigMap")["parhelion-platform"]["data"]["platform.yaml"])
    assert platform.hub.auth.token_url == "http://10.1.0.4:9400/oauth2/token"
    assert re.match(r"http://localhost:\d+/hub/oauth_callback", platform.hub.auth.callback_url)


def test_the_gateway_api_watches_pods_only_in_its_namespace(helm, chart):
    """Parhelion's gateway backend counts its clusters' pods (workers still retiring after a
    scale-down hold cores): get, list and watch, in the release's namespace, nothing more."""
    objects = render(helm, chart)
    account = "parhelion-dask-gateway-api"
    bound = [
        o
        for o in objects
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding") and o["subjects"][0]["name"] == account
    ]
    roles = {**_named(objects, "Role"), **_named(objects, "ClusterRole")}
    pod_rules = [
        (binding["kind"], rule)
        for binding in bound
        for rule in roles[binding["roleRef"]["name"]]["rules"]
        if "pods" in rule.get("resources", [])
    ]
    assert pod_rules == [
        ("RoleBinding", {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]})
    ]
