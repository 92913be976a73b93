"""The configuration loads: each rendered container's configuration through its real loader.

The chart is rendered with its real dependencies; each process then starts as its pod would
start it (tests/pods.py): the files of its ConfigMaps and Secrets where the pod mounts them,
the files the image itself adds (the hub Dockerfile's COPY lines), its environment from the
rendering, and the packages of its image's lock (tests/images/venvs.py) at the image's path.

* the hub: zero-to-jupyterhub's jupyterhub_config.py, which then execs Parhelion's from
  jupyterhub_config.d in ITS namespace, under JupyterHub's own config loader;
* the dask-gateway API server: the chart's generated config, with Parhelion's subconfig,
  under dask-gateway-server's loader; the scheduler and worker commands it gives Dask pods
  then run (``--help``) in the Dask image's environment;
* the accounting service: started with its Deployment's command and environment, answering
  its health probe (in a network namespace of its own: pods listen on 0.0.0.0).

Each of these failed on the chart as first written: no pycurl in the hub image, a bare
get_config() in z2jh's namespace, Dask commands distributed no longer installs.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.chart.charts import OAUTH_SECRET, rendered_objects
from tests.images.venvs import image_venv
from tests.platform import REPO_ROOT
from tests.pods import PodLayout

pytestmark = pytest.mark.configload


def image_files(image: str, root: Path) -> dict[str, Path]:
    """What the image's Dockerfile COPYs from the repository to a fixed path (not its packages)."""
    files = {}
    for source, target in re.findall(r"^COPY (hub_config/\S+) (\S+)$", _dockerfile(image), re.MULTILINE):
        copy = root / "image-files" / target.lstrip("/")
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / source, copy)
        files[target] = copy
    return files


def _dockerfile(image: str) -> str:
    return (REPO_ROOT / "images" / image / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> list[dict]:
    return rendered_objects(tmp_path_factory)


@pytest.fixture(scope="module")
def hub_venv(tmp_path_factory) -> Path:
    return image_venv("hub", tmp_path_factory.mktemp("wheel"))


def _layout(rendered, name: str, root: Path) -> PodLayout:
    layout = PodLayout.of([*rendered, OAUTH_SECRET], "Deployment", name, root)
    for target, copy in image_files("hub", root).items():
        layout.mounts.setdefault(target, copy)
    return layout


HUB_PROBE = """
import json
from jupyterhub.app import JupyterHub
from tornado.httpclient import AsyncHTTPClient

app = JupyterHub()
app.raise_config_file_errors = True
app.load_config_file("/usr/local/etc/jupyterhub/jupyterhub_config.py")
c = app.config
print("CONFIG " + json.dumps({
    "spawner": str(c.JupyterHub.spawner_class),
    "http_client": AsyncHTTPClient.configured_class().__name__,
    "extra_labels": dict(c.KubeSpawner.extra_labels),
    "services": sorted(s["name"] for s in c.JupyterHub.services),
    "urls": {s["name"]: s.get("url") for s in c.JupyterHub.services},
    "no_confirm": {s["name"]: s.get("oauth_no_confirm", False) for s in c.JupyterHub.services},
    "roles": {r["name"]: sorted(r.get("scopes", [])) for r in c.JupyterHub.load_roles},
    "init_containers": [i.get("name") for i in (c.KubeSpawner.init_containers or [])],
    "authenticator": str(c.JupyterHub.authenticator_class),
    "oauth": {k: c.OAuthenticator[k] for k in ("client_id", "oauth_callback_url", "allow_existing_users")},
    "client_secret_set": c.OAuthenticator.client_secret == "test-client-secret",
    "platform_config_path": c.LivePlatformAccess.platform_config_path,
    "environment": {k: v for k, v in c.KubeSpawner.environment.items() if "ADDRESS" in k},
    "dask": {k: v for k, v in c.KubeSpawner.environment.items() if k.startswith("DASK_")},
}))
"""


def test_the_hub_loads_zero_to_jupyterhubs_configuration_and_parhelions(rendered, hub_venv, tmp_path):
    layout = _layout(rendered, "hub", tmp_path)
    assert layout.argv[:3] == ["jupyterhub", "--config", "/usr/local/etc/jupyterhub/jupyterhub_config.py"]
    done = layout.run(hub_venv, ["python", "-c", HUB_PROBE])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "Loading /usr/local/etc/jupyterhub/jupyterhub_config.d config: parhelion.py" in done.stdout
    config = json.loads(done.stdout.split("CONFIG ", 1)[1])
    assert config["spawner"] == "kubespawner.KubeSpawner"
    assert config["http_client"] == "CurlAsyncHTTPClient"  # pycurl is in the hub image
    # z2jh's label (what its NetworkPolicy admits to the hub) kept beside Parhelion's
    assert config["extra_labels"]["hub.jupyter.org/network-access-hub"] == "true"
    assert config["extra_labels"]["parhelion.dev/metered"] == "true"
    assert {"accounting", "dask-gateway"} <= set(config["services"])
    # derived from HELM_RELEASE_NAME, and rendered under those names
    services = {o["metadata"]["name"] for o in rendered if o["kind"] == "Service"}
    assert config["urls"]["accounting"] == "http://parhelion-accounting:8080"
    assert config["urls"]["dask-gateway"] == "http://traefik-parhelion-dask-gateway"
    # the dashboards' gate logs people in through the gateway's OAuth client without a prompt
    assert config["no_confirm"]["dask-gateway"] is True
    assert {"parhelion-accounting", "traefik-parhelion-dask-gateway"} <= services
    assert "access:services!service=dask-gateway" in config["roles"]["server"]
    assert config["init_containers"] == []  # no privileged iptables container in users' pods
    # the login platform.hub.auth names, not zero-to-jupyterhub's dummy, with the secret's value
    assert config["authenticator"] == "<class 'platform_tools.hub.auth.PlatformOIDCAuthenticator'>"
    assert config["oauth"] == {
        "client_id": "parhelion",
        "oauth_callback_url": "https://hub.example.org/hub/oauth_callback",
        "allow_existing_users": False,
    }
    assert config["client_secret_set"] is True
    assert config["platform_config_path"] == "/etc/parhelion/platform/platform.yaml"
    # servers reach the hub's proxy where it serves plain HTTP: these values end TLS at the load
    # balancer (offload) with port 80 disabled, so the Service's port 443 (zero-to-jupyterhub's
    # values, read in the hub as its own config reads them)
    assert config["environment"]["DASK_GATEWAY__ADDRESS"] == "http://proxy-public:443/services/dask-gateway"
    assert config["environment"]["PARHELION_ACCOUNTING_ADDRESS"] == "http://proxy-public:443"
    # JupyterLab's Dask integration, as the daskhub chart configures it (braces doubled: KubeSpawner
    # formats environment values); dashboards linked at the hub's public origin
    dask = config["dask"]
    assert dask["DASK_DISTRIBUTED__DASHBOARD__LINK"] == "{{JUPYTERHUB_SERVICE_PREFIX}}proxy/{{port}}/status"
    assert dask["DASK_LABEXTENSION__FACTORY__MODULE"] == "dask_gateway"
    assert dask["DASK_LABEXTENSION__FACTORY__CLASS"] == "GatewayCluster"
    assert dask["DASK_GATEWAY__PUBLIC_ADDRESS"] == "https://hub.example.org/services/dask-gateway/"


GATEWAY_PROBE = """
import json
from dask_gateway_server.app import DaskGateway
from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig

app = DaskGateway()
app.raise_config_file_errors = True
app.load_config_file("/etc/dask-gateway/dask_gateway_config.py")
c = app.config
cluster = KubeClusterConfig(config=c)  # what the API server puts in each DaskCluster's spec
print("CONFIG " + json.dumps({
    "backend": getattr(c.DaskGateway.backend_class, "__name__", str(c.DaskGateway.backend_class)),
    "scheduler_cmd": list(cluster.scheduler_cmd),
    "worker_cmd": list(cluster.worker_cmd),
    "accounting_url": c.AggregateLimitsMixin.accounting_url,
    "jupyterhub_service_name": c.JupyterHubAuthenticator.jupyterhub_service_name,
}))
"""


@pytest.fixture(scope="module")
def gateway_config(rendered, hub_venv, tmp_path_factory) -> dict:
    layout = _layout(rendered, "api-parhelion-dask-gateway", tmp_path_factory.mktemp("gateway"))
    assert layout.argv == ["dask-gateway-server", "--config", "/etc/dask-gateway/dask_gateway_config.py"]
    done = layout.run(hub_venv, ["python", "-c", GATEWAY_PROBE])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(done.stdout.split("CONFIG ", 1)[1])


def test_the_gateway_loads_the_charts_configuration_and_parhelions(gateway_config):
    assert gateway_config["backend"] == "ParhelionKubeBackend"
    assert gateway_config["accounting_url"] == "http://parhelion-accounting:8080"
    # only tokens allowed to use the gateway service, not any hub token
    assert gateway_config["jupyterhub_service_name"] == "dask-gateway"


@pytest.mark.parametrize("role", ["scheduler", "worker"])
def test_dask_pods_commands_exist_in_the_dask_image(gateway_config, rendered, role, tmp_path):
    """The command a scheduler or worker pod runs, run in the Dask image's environment."""
    import subprocess

    values = yaml.safe_load((REPO_ROOT / "helm" / "parhelion" / "values.yaml").read_text())
    image = values["dask-gateway"]["gateway"]["backend"]["image"]["name"].rsplit("parhelion-", 1)[1]
    venv = image_venv(image, tmp_path)
    command = gateway_config[f"{role}_cmd"]
    executable = shutil.which(command[0], path=str(venv / "bin"))
    assert executable, f"{command[0]!r} is not in the {image} image's environment"
    done = subprocess.run([executable, *command[1:], "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Usage:" in done.stdout


ACCOUNTING_PROBE = """
import subprocess, sys, time, urllib.request
service = subprocess.Popen(sys.argv[1:])
try:
    for _ in range(150):
        try:
            with urllib.request.urlopen("http://127.0.0.1:8080/services/accounting/health", timeout=1) as r:
                print("HEALTH", r.status, r.read().decode())
                break
        except OSError:
            if service.poll() is not None:
                print("EXITED", service.returncode)
                break
            time.sleep(0.2)
finally:
    service.terminate()
    service.wait(20)
"""


def test_the_accounting_service_starts_as_its_deployment_says(rendered, hub_venv, tmp_path):
    layout = _layout(rendered, "parhelion-accounting", tmp_path)
    argv = [str(Path("/opt/parhelion/bin/python")), *layout.argv[1:]]
    done = layout.run(hub_venv, ["python", "-c", ACCOUNTING_PROBE, *argv], timeout=90)
    assert "HEALTH 200" in done.stdout, done.stdout[-3000:] + done.stderr[-5000:]
