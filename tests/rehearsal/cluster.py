"""The rehearsal's cluster: everything that stands in for EKS, in one event loop of its own.

``RehearsalCluster`` runs, in a background thread (the test's own code stays synchronous, as
a user's browser and notebook are): the API stand-in over HTTPS on 127.0.0.1 with a CA of its
own (pods reach it as ``kubernetes.default``, with the service account token and ca.crt a
kubelet mounts), the controller and scheduler stand-ins, the pod network and Services, the
process kubelet and the traefik stand-in. Nodes are registered as Karpenter would launch them
for the chart's pools (core, users, spot dask-workers with their taint), so node selectors,
tolerations and the accounting service's prices by instance type are exercised.

Stopping (always, from the test's fixture) kills every pod's process tree, removes the
network namespaces, the bridge and the cgroups, and closes every listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import yaml
from aiohttp import web

from tests.rehearsal.apiserver import ApiServer
from tests.rehearsal.controllers import ControllerManager, is_ready
from tests.rehearsal.images import ImageCatalog
from tests.rehearsal.kubelet import ProcessKubelet
from tests.rehearsal.network import HostsFile, PodNetwork
from tests.rehearsal.sandbox import PidsCgroup
from tests.rehearsal.services import ServiceSync
from tests.rehearsal.store import ObjectStore
from tests.rehearsal.traefik import TraefikStandIn

NAMESPACE = "parhelion"


def _node(name: str, pool: str, instance_type: str, capacity: str, cpu: str, memory: str, taints=()) -> dict:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/region": "us-east-1",
        "topology.kubernetes.io/zone": "us-east-1a",
        "karpenter.sh/nodepool": pool,
        "karpenter.sh/capacity-type": capacity,
        "parhelion.dev/pool": pool,
    }
    if pool == "core":
        labels["hub.jupyter.org/node-purpose"] = "core"
    if pool == "users":
        labels["hub.jupyter.org/node-purpose"] = "user"
    resources = {"cpu": cpu, "memory": memory, "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": list(taints)},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


#: The nodes Karpenter would have launched for the chart's pools (values.yaml karpenter.pools).
NODES = [
    _node("ip-10-0-1-10.ec2.internal", "core", "m6i.large", "on-demand", "2", "8Gi"),
    _node("ip-10-0-2-20.ec2.internal", "users", "m6i.xlarge", "on-demand", "4", "16Gi"),
    _node(
        "ip-10-0-3-30.ec2.internal",
        "dask-workers",
        "m6i.2xlarge",
        "spot",
        "8",
        "32Gi",
        taints=[{"key": "parhelion.dev/dask-worker", "value": "true", "effect": "NoSchedule"}],
    ),
]


def certificate_authority(addresses: list[str], names: list[str]) -> tuple[bytes, bytes, bytes]:
    """(CA certificate, server certificate, server key) PEM for the API stand-in's HTTPS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def pem(cert) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    end = start + dt.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rehearsal stand-in CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alternatives = [x509.DNSName(n) for n in names] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in addresses
    ]
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver stand-in")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem(ca), pem(server), key_pem


class RehearsalCluster:
    """The stand-ins for EKS's control plane and nodes, started and stopped as one."""

    def __init__(self, root: Path):
        self.root = root
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="rehearsal-cluster", daemon=True)
        self.store = ObjectStore()
        self.network = PodNetwork(root)
        self.hosts = HostsFile(root / "hosts")
        self.services = ServiceSync(self.store, self.network, self.hosts)
        # ClusterIPs from the pod network, given at creation as the API server gives them:
        # a pod started a moment later must find its Service variables valid
        self.store.allocate_cluster_ip = lambda namespace, name: self.network.service_ip(
            f"{namespace}/{name}"
        )
        self.api = ApiServer(self.store)
        self.controllers = ControllerManager(self.store)
        self.kubelet: ProcessKubelet | None = None
        self.images = ImageCatalog(root / "images")
        self._runner: web.AppRunner | None = None
        self.api_url = ""
        self.ca = b""

    # -- running code in the cluster's loop -----------------------------------------------------
    def call(self, function: Callable, *args, timeout: float = 60):
        """``function(*args)`` in the cluster's loop (awaited if it is a coroutine function)."""

        async def run():
            result = function(*args)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def start(self) -> None:
        self._thread.start()
        self.network.up()
        self.call(self._start, timeout=300)

    async def _start(self) -> None:
        kubernetes_ip = self.network.service_ip("default/kubernetes")
        names = [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        self.ca, cert, key = certificate_authority(["127.0.0.1", kubernetes_ip], names)
        for name, content in (("ca.crt", self.ca), ("apiserver.crt", cert), ("apiserver.key", key)):
            (self.root / name).write_bytes(content)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.root / "apiserver.crt", self.root / "apiserver.key")
        self._runner = web.AppRunner(self.api.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.api_url = f"https://127.0.0.1:{port}"
        for namespace in (NAMESPACE, "outside"):  # "default" (and kube-system) the store has
            if self.store.get("Namespace", namespace) is None:
                self.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        self.services.expose_host_port("default", "kubernetes", 443, port, "https")
        for node in NODES:
            self.store.create(node)
        await self.services.start()
        await self.controllers.start()
        self.kubelet = ProcessKubelet(
            self.store,
            self.network,
            self.hosts,
            self.images,
            self.root,
            nodes=[n["metadata"]["name"] for n in NODES],
            api_ca=self.ca,
            cluster_tag=self.network.tag,
            stand_ins={"traefik": TraefikStandIn},
        )
        await self.kubelet.start()

    def expose(self, name: str, host_port: int, port: int = 80) -> str:
        """A process of this machine reachable from pods (and from here) as http://<ClusterIP>:<port>."""
        address = self.call(self.services.expose_host_port, "outside", name, port, host_port)
        return f"http://{address}" + ("" if port == 80 else f":{port}")

    def install(self, manifests: list[dict]) -> None:
        """The rendered chart, applied as ``helm install`` applies it (CRDs first)."""
        self.call(self.store.load, manifests, NAMESPACE)

    def kubeconfig(self, folder: Path) -> Path:
        """A kubeconfig for clients on this machine (the CLI, ansible): HTTPS with the CA."""
        import base64

        path = folder / "kubeconfig"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "rehearsal",
                            "cluster": {
                                "server": self.api_url,
                                "certificate-authority-data": base64.b64encode(self.ca).decode(),
                            },
                        }
                    ],
                    "users": [{"name": "admin", "user": {"token": "stand-in:admin"}}],
                    "contexts": [
                        {
                            "name": "rehearsal",
                            "context": {"cluster": "rehearsal", "user": "admin", "namespace": NAMESPACE},
                        }
                    ],
                    "current-context": "rehearsal",
                }
            )
        )
        return path

    # -- looking at it ------------------------------------------------------------------------
    def get(self, kind: str, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self.call(self.store.get, kind, name, namespace)

    def list(self, kind: str, namespace: str | None = NAMESPACE, labels=None) -> list[dict]:
        return self.call(self.store.list, kind, namespace, labels)

    def logs(self, name: str, namespace: str = NAMESPACE) -> str:
        return self.kubelet.logs(namespace, name) if self.kubelet else ""

    def all_logs(self) -> str:
        folder = self.root / "pods"
        return "\n".join(
            f"=== {f.parent.name}/{f.name}\n{f.read_text(errors='replace')[-4000:]}"
            for f in sorted(folder.glob("*/*.log"))
        )

    def wait_for(self, what: str, check: Callable[[], object], timeout: float = 120, every: float = 0.5):
        """The first truthy ``check()``; a failure naming ``what`` and showing the pods' logs."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(every)
        raise AssertionError(f"timed out waiting for {what}\n{self.pod_summary()}\n{self.all_logs()}")

    def pod_summary(self) -> str:
        lines = []
        for pod in self.list("Pod", None):
            status = pod.get("status") or {}
            ready = is_ready(pod)
            lines.append(
                f"{pod['metadata']['namespace']}/{pod['metadata']['name']}: {status.get('phase')} "
                f"ready={ready} node={pod['spec'].get('nodeName')} ip={status.get('podIP')} "
                f"{status.get('reason', '')} {status.get('message', '')}"
            )
        for event in self.list("Event", None):
            lines.append(
                f"event {event['involvedObject'].get('name')}: {event.get('reason')} {event.get('message')}"
            )
        return "\n".join(lines)

    def leftovers(self) -> list[str]:
        """What of the cluster is still on this machine (after ``stop``: nothing, or a bug)."""
        import subprocess

        found = [f"process {pid}" for pid in self._pids()]
        if self._cgroup_root.exists():
            found.append(f"cgroup {self._cgroup_root}")
        tag = f"ph{self.network.tag}"  # every netns, veth and the bridge are named from it
        for what in (["netns", "list"], ["link"]):
            listing = subprocess.run(["ip", *what], capture_output=True, text=True).stdout
            found += [f"ip {what[0]}: {line.split()[0:2]}" for line in listing.splitlines() if tag in line]
        return found

    @property
    def _cgroup_root(self) -> Path:
        return PidsCgroup.ROOT / f"parhelion-rehearsal-{self.network.tag}"

    def _pids(self) -> list[int]:
        return [
            int(p) for procs in self._cgroup_root.glob("*/cgroup.procs") for p in procs.read_text().split()
        ]

    def stop(self) -> None:
        """Everything stopped and removed, whatever state it is in."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.call(self._stop, timeout=120)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
        self.network.down()

    async def _stop(self) -> None:
        if self.kubelet:
            await self.kubelet.stop()
        await self.controllers.stop()
        await self.services.stop()
        if self._runner:
            await self._runner.cleanup()
