"""The EKS rehearsal's story: one researcher's first hour, as the rendered chart's processes serve it.

Everything Kubernetes would run is started by the process kubelet from the rendered chart
(tests/rehearsal): zero-to-jupyterhub's hub with Parhelion's configuration and KubeSpawner,
configurable-http-proxy, dask-gateway's API server and controller with Parhelion's backend,
the accounting service in --kubernetes mode, and then what they create: the user's server
pod, the Dask scheduler and worker pods. Only the API server, the scheduler and controllers,
the kubelet, the network and traefik are stand-ins.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest
import requests

from platform_tools.accounting.kubernetes_sources import quantity
from platform_tools.clients.hubclient import HubUser
from tests.ansible.runner import ANSIBLE_DIR, run_playbook
from tests.platform import run_parhelion
from tests.rehearsal.cluster import NAMESPACE, RehearsalCluster
from tests.rehearsal.deployment import BUCKET, Deployment, OutsideWorld, install
from tests.rehearsal.sandbox import PidsCgroup

# serial: a whole EKS-like cluster of processes, with spawn timeouts as on EKS
pytestmark = [pytest.mark.rehearsal, pytest.mark.serial]
AWS_INVENTORY = ANSIBLE_DIR / "inventories" / "aws-example"

CORE = (
    "hub-",
    "proxy-",
    "api-parhelion-dask-gateway-",
    "controller-parhelion-dask-gateway-",
    "parhelion-accounting-",
    "traefik-parhelion-dask-gateway-",
)

READ_ARCHIVE = f"""
import fsspec
from astropy.io import fits
from platform_tools.archives import storage_options
fs = fsspec.filesystem("s3", **storage_options("s3://{BUCKET}"))
files = sorted(f for f in fs.find("{BUCKET}") if f.endswith(".fits"))
with fs.open(files[0]) as f, fits.open(f) as hdus:
    print("archive", len(files), hdus[-1].data.shape)
"""

START_CLUSTER = """
from dask_gateway import Gateway
cluster = Gateway().new_cluster(shutdown_on_close=False)
cluster.scale(1)
cluster.get_client().wait_for_workers(1, timeout=180)
"""

DASK_SUM = """
from dask_gateway import Gateway
import dask.array as da
gateway = Gateway()
cluster = gateway.new_cluster()
cluster.scale(1)
client = cluster.get_client()
client.wait_for_workers(1, timeout=180)
print("sum", int(da.ones(1000, chunks=100).sum().compute()), cluster.name)
"""


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    world = OutsideWorld(tmp_path_factory.mktemp("outside"))
    try:
        world.start()
        yield world
    finally:
        world.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, outside):
    root = tmp_path_factory.mktemp("cluster")
    cluster = RehearsalCluster(root)
    try:
        cluster.start()
        deployed = install(cluster, outside, root)
        for prefix in CORE:
            cluster.wait_for(f"pod {prefix}* ready", lambda p=prefix: deployed.ready(p), timeout=180)
        yield deployed
    finally:
        cluster.stop()
    leftovers = cluster.leftovers()
    assert not leftovers, f"the rehearsal left these behind: {leftovers}"


def oauth(name: str) -> dict:
    return {"sub": name}


def test_the_chart_starts_as_on_eks(deployment: Deployment):
    """Every core pod of the chart runs on the core pool and is ready; the hub answers through the proxy."""
    for prefix in CORE:
        pod = deployment.ready(prefix)
        assert pod["spec"]["nodeName"] == "ip-10-0-1-10.ec2.internal", pod["metadata"]["name"]
    assert requests.get(f"{deployment.hub_url}/hub/health", timeout=10).status_code == 200
    # zero-to-jupyterhub's idle culler, a service the hub starts inside its pod
    hub = deployment.ready("hub-")
    cgroup = PidsCgroup(f"{deployment.cluster.kubelet.cgroup_root}/{hub['metadata']['uid']}")
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in cgroup.pids()]
    assert any(b"jupyterhub_idle_culler" in c for c in commands), commands


def test_a_researchers_first_hour(deployment: Deployment, outside: OutsideWorld):
    """alice: OAuth login, her profiles with prices, her pod as KubeSpawner makes it, the archive
    over S3, a Dask cluster from ``Gateway()`` whose pods dask-gateway's controller makes, and
    the accounting service metering all of them by their labels and nodes."""
    cluster = deployment.cluster
    on_the_server = len(list((outside.s3.root / BUCKET).rglob("*.fits")))

    async def story():
        async with HubUser(deployment.hub_url, "alice", oauth_form=oauth("alice"), timeout=120) as user:
            await user.login()
            async with user.session.get(f"{deployment.hub_url}/hub/spawn/alice") as page:
                form = await page.text()
            assert "$0.012/hour" in form and "$0.096/hour" in form, form[-3000:]
            await user.start_server(timeout=180)
            pod = deployment.pod("jupyter-alice")
            labels, annotations = pod["metadata"]["labels"], pod["metadata"]["annotations"]
            assert labels["parhelion.dev/metered"] == "true"
            assert labels["hub.jupyter.org/network-access-hub"] == "true"  # z2jh's, kept
            assert annotations["parhelion.dev/user"] == "alice"
            assert pod["spec"]["nodeSelector"]["parhelion.dev/pool"] == "users"
            assert pod["spec"]["nodeName"] == "ip-10-0-2-20.ec2.internal"
            requests = pod["spec"]["containers"][0]["resources"]["requests"]
            assert quantity(requests["memory"]) == 2**30 and quantity(requests["cpu"]) == 0.1  # small
            (claim,) = [
                v["persistentVolumeClaim"]["claimName"]
                for v in pod["spec"]["volumes"]
                if "persistentVolumeClaim" in v
            ]
            assert cluster.get("PersistentVolumeClaim", claim)["status"]["phase"] == "Bound"
            await user.open_lab()
            kernel = await user.start_kernel()
            try:
                archive = _text(await kernel.execute(READ_ARCHIVE, timeout=120))
                # every FITS file of the archive listed, one opened, over S3 from the pod
                assert re.search(rf"archive {on_the_server} \(\d+, \d+\)", archive), archive
                dask = _text(await kernel.execute(DASK_SUM, timeout=300))
                assert "sum 1000" in dask, dask
                dask_pods_placed_and_labelled(cluster)
                await metered(user, {"server", "dask-scheduler", "dask-worker", "storage"})
            finally:
                await kernel.shutdown()
            await user.stop_server()
        cluster.wait_for(
            "alice's pods gone",
            lambda: (
                not cluster.list("Pod", NAMESPACE, {"parhelion.dev/user": "alice"})
                and not deployment.pod("jupyter-alice")
            ),
        )

    told(deployment, story())


def test_a_budget_cut_by_the_admin_stops_what_runs(deployment: Deployment, tmp_path):
    """carol runs a server and a Dask cluster; the admin cuts her group's budget with Ansible's
    quotas.yml (its Kubernetes path: the platform ConfigMap, through the same API); the
    accounting service sees the change, and within an interval its enforcer has the hub and
    the gateway delete her pods, and the ledger says why."""
    cluster = deployment.cluster

    async def story():
        async with HubUser(deployment.hub_url, "carol", oauth_form=oauth("carol"), timeout=120) as user:
            await user.login()
            await user.start_server(timeout=180)
            await user.open_lab()
            kernel = await user.start_kernel()
            await kernel.execute(START_CLUSTER, timeout=300)
            running = [p["metadata"]["name"] for p in cluster.list("Pod", NAMESPACE) if _owner(p) == "carol"]
            assert "jupyter-carol" in running and any(n.startswith("dask-worker-") for n in running), running
            cut = {
                "visitors": {
                    "members": ["carol"],
                    "profiles": ["small"],
                    "budget": {"usd": 0.00001, "period": "month", "grace_minutes": 0},
                }
            }
            done = await asyncio.to_thread(
                run_playbook,
                "quotas.yml",
                tmp_path / "home",
                inventory=AWS_INVENTORY,
                extra_vars={
                    "platform_config_kubeconfig": str(cluster.kubeconfig(tmp_path)),
                    "platform_config_groups": cut,
                },
            )
            assert done.returncode == 0, "\n".join(done.failures()) or done.stderr
            cut_at = time.monotonic()
            await asyncio.to_thread(
                cluster.wait_for,
                "carol's pods deleted",
                lambda: not [p for p in cluster.list("Pod", NAMESPACE) if _owner(p) == "carol"],
                60,
            )
            print(f"carol's pods deleted {time.monotonic() - cut_at:.1f} s after the cut")
            report = await metered(user, set())
            stops = [e for e in report["events"] if e["action"] == "stop"]
            assert stops and stops[0]["rule"] == "budget-cap", report["events"]
            # what was stopped, by the names carol knows (not "cluster parhelio", the namespace)
            assert re.match(r"Stopped server \(default\), cluster [0-9a-f]{8}:", stops[0]["message"]), stops

    told(deployment, story())


def test_a_closed_class_student_is_refused(deployment: Deployment):
    """bob's class (summer-school) is closed: the identity provider knows him, the hub does not."""
    answer = log_in(deployment, "bob")
    assert answer.status_code == 403, answer.text[-2000:]
    assert not deployment.pod("jupyter-bob")


def test_class_prewarm_scales_the_placeholders(deployment: Deployment, tmp_path):
    """``parhelion class prewarm`` (on the admin's machine, through the API) makes room for the
    open class's roster: the placeholders' StatefulSet scales and its pods run on the users pool."""
    cluster = deployment.cluster
    kubeconfig = str(cluster.kubeconfig(tmp_path))
    done = run_parhelion("class", "prewarm", "winter-school", "--kubernetes", "--kubeconfig", kubeconfig)
    assert done.returncode == 0, done.stderr
    placeholders = {"app.kubernetes.io/component": "placeholder"}
    pods = cluster.wait_for(
        "two placeholders running",
        lambda: [
            p for p in cluster.list("Pod", NAMESPACE, placeholders) if deployment.ready(p["metadata"]["name"])
        ],
    )
    assert len(pods) == 2 and {p["spec"]["nodeName"] for p in pods} == {"ip-10-0-2-20.ec2.internal"}
    done = run_parhelion(
        "class", "prewarm", "winter-school", "--kubernetes", "--stop", "--kubeconfig", kubeconfig
    )
    assert done.returncode == 0, done.stderr
    cluster.wait_for("placeholders gone", lambda: not cluster.list("Pod", NAMESPACE, placeholders))


def log_in(deployment: Deployment, name: str) -> requests.Response:
    """A browser's login: the hub's login sends it to the provider's form, then back."""
    session = requests.Session()
    form = session.get(f"{deployment.hub_url}/hub/oauth_login", timeout=30)
    assert form.url.startswith(deployment.oidc_url), form.url
    return session.post(form.url, data={"sub": name}, timeout=60)


def _owner(pod: dict) -> str | None:
    return (pod["metadata"].get("annotations") or {}).get("parhelion.dev/user")


def dask_pods_placed_and_labelled(cluster: RehearsalCluster) -> None:
    schedulers = cluster.list("Pod", NAMESPACE, {"app.kubernetes.io/component": "dask-scheduler"})
    workers = cluster.list("Pod", NAMESPACE, {"app.kubernetes.io/component": "dask-worker"})
    assert len(schedulers) == 1 and len(workers) == 1
    assert schedulers[0]["spec"]["nodeName"] == "ip-10-0-2-20.ec2.internal"  # the users pool
    assert workers[0]["spec"]["nodeName"] == "ip-10-0-3-30.ec2.internal"  # spot, its taint tolerated
    for pod in (*schedulers, *workers):
        assert pod["metadata"]["labels"]["parhelion.dev/metered"] == "true"
        assert pod["metadata"]["annotations"]["parhelion.dev/user"] == "alice"


async def metered(user: HubUser, kinds: set[str], timeout: float = 60) -> dict:
    """The person's spend page data once the meter sees ``kinds`` running (one sample or more)."""
    async with user.session.get(f"{user.hub_url}/services/accounting/") as page:
        assert page.status == 200, await page.text()
    url = f"{user.hub_url}/services/accounting/api/v1/users/{user.username}"
    report: dict = {}
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        async with user.session.get(url) as answer:
            assert answer.status == 200, await answer.text()
            report = await answer.json()
        if kinds <= {r["kind"] for r in report["running"]}:
            rates = {r["kind"]: r["rate_per_hour_usd"] for r in report["running"]}
            assert all(rate > 0 for rate in rates.values()), rates
            return report
        await asyncio.sleep(1)
    raise AssertionError(f"the meter did not see {kinds} running: {report.get('running')}")


def told(deployment: Deployment, story) -> None:
    """Runs a chapter; a failure shows the cluster's pods, events and logs."""
    try:
        asyncio.run(story)
    except Exception as error:  # a KeyError on a label as much as a failed assertion
        cluster = deployment.cluster
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # kernels' tracebacks come coloured
        raise AssertionError(f"{message}\n{cluster.pod_summary()}\n{cluster.all_logs()}") from error


def _text(outputs: list) -> str:
    return "".join(o.get("text", "") or str(o.get("data", {}).get("text/plain", "")) for o in outputs)
