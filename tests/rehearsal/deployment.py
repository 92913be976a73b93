"""The rehearsal deployment: examples/rehearsal.yaml rendered and installed into the stand-ins.

What an admin has before ``helm install`` is made here as real processes outside the cluster:
the identity provider (oidc-provider-mock, the OpenID Connect provider the chart-k3s workflow
uses), an S3 server (rclone) seeded with the sample archive under the SDO bucket's name, and
the OAuth client secret as the Secret helm/README.md asks for. They are exposed to the pods
as Services without selectors. The chart is then rendered by the real helm with its real
dependency charts (CRDs included, as ``helm install`` applies them) and the run's addresses
set on the command line, as the k3s workflow sets its runner's.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from platform_tools.config.models import LocalArchive
from platform_tools.local.archive import write_sample_archive
from platform_tools.services.processes import free_tcp_ports
from tests.chart.charts import chart_copy, helm_in
from tests.platform import REPO_ROOT, RcloneS3, stop_process, wait_for_http
from tests.rehearsal.cluster import NAMESPACE, RehearsalCluster
from tests.rehearsal.controllers import is_ready

VALUES = REPO_ROOT / "helm" / "parhelion" / "examples" / "rehearsal.yaml"
BUCKET = "gov-nasa-hdrl-data1"
CLIENT_SECRET = "rehearsal-client-secret"


@dataclass
class Deployment:
    cluster: RehearsalCluster
    hub_url: str  # the proxy's public Service, as a browser on the cluster's network reaches it
    oidc_url: str
    objects: list[dict]

    def pod(self, prefix: str, labels: dict | None = None) -> dict | None:
        """The first pod whose name starts with ``prefix`` (and has ``labels``)."""
        for pod in self.cluster.list("Pod", NAMESPACE, labels):
            if pod["metadata"]["name"].startswith(prefix) and not pod["metadata"].get("deletionTimestamp"):
                return pod
        return None

    def ready(self, prefix: str) -> dict | None:
        """The pod if it is ready; fails at once if it keeps crashing (no point waiting on)."""
        pod = self.pod(prefix)
        for container in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
            if container.get("restartCount", 0) >= 3:
                name = pod["metadata"]["name"]
                raise AssertionError(f"{name} keeps crashing:\n{self.cluster.logs(name)[-8000:]}")
        return pod if pod and is_ready(pod) else None


class OutsideWorld:
    """What the cluster reaches outside itself: the identity provider and the S3 archive."""

    def __init__(self, root: Path):
        self.root = root
        self.oidc: subprocess.Popen | None = None
        self.oidc_port = free_tcp_ports(1)[0]
        self.s3 = RcloneS3(root / "s3", keyed=False)  # anonymous, as AWS Open Data buckets are

    def start(self) -> None:
        settings = LocalArchive(sample_files=4, sample_image_size=64)
        write_sample_archive(self.s3.root / BUCKET, BUCKET, settings)
        self.s3.start()
        log = (self.root / "oidc.log").open("wb")
        self.oidc = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", "--port", str(self.oidc_port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{self.oidc_port}/.well-known/openid-configuration"
        wait_for_http(url, self.oidc, "oidc-provider-mock", 30)

    def stop(self) -> None:
        stop_process(self.oidc)
        self.s3.stop()


def render(root: Path, sets: list[str]) -> list[dict]:
    """examples/rehearsal.yaml through the real chart and its real dependencies, CRDs first."""
    helm = helm_in(root / "helm")
    chart = chart_copy(root / "chart", helm)
    text = helm.template(chart, [VALUES], sets=sets, include_crds=True)
    return [o for o in yaml.safe_load_all(text) if o]


def install(cluster: RehearsalCluster, outside: OutsideWorld, root: Path) -> Deployment:
    oidc = cluster.expose("oidc", outside.oidc_port)
    s3 = cluster.expose("s3", outside.s3.port)
    proxy = f"http://{cluster.call(cluster.network.service_ip, f'{NAMESPACE}/proxy-public')}"
    auth = "platform.hub.auth."
    sets = [
        f"{auth}callback_url={proxy}/hub/oauth_callback",
        f"{auth}authorize_url={oidc}/oauth2/authorize",
        f"{auth}token_url={oidc}/oauth2/token",
        f"{auth}userdata_url={oidc}/userinfo",
        f"platform.archives.sdo.endpoint_url={s3}",
    ]
    objects = render(root, sets)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "parhelion-oauth", "namespace": NAMESPACE},
        "stringData": {"client-secret": CLIENT_SECRET},
    }
    for image in ("hub", "helio"):  # made before the pods need them (minutes, on a fresh clone)
        cluster.images.resolve(f"ghcr.io/parhelion-platform/parhelion-{image}")
    cluster.install([secret, *objects])
    return Deployment(cluster=cluster, hub_url=proxy, oidc_url=oidc, objects=objects)
