"""Services of the rehearsal: ClusterIPs, names and forwarding kept in step with the API.

The part of kube-proxy and cluster DNS the processes rely on, driven by the API stand-in's
changes: each Service gets a ClusterIP (written into ``spec.clusterIP``, as the API server
allocates it), a hosts-file name, and listeners forwarding to its Endpoints' ready addresses
(tests/rehearsal/network.py). Headless Services (``clusterIP: None``, as dask-gateway makes
for schedulers) resolve to their first ready pod, as DNS answers for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tests.rehearsal.network import HostsFile, PodNetwork, ServiceProxy

log = logging.getLogger(__name__)


def _targets(service: dict, endpoints: dict | None, port: dict) -> list[tuple[str, int]]:
    """Ready (address, port) pairs of ``endpoints`` for one of the Service's ports."""
    targets = []
    for subset in (endpoints or {}).get("subsets") or []:
        ports = subset.get("ports") or []
        matching = [p for p in ports if p.get("name") == port.get("name")] or (
            ports if len(ports) == 1 else []
        )
        for target in matching:
            targets += [(address["ip"], target["port"]) for address in subset.get("addresses") or []]
    return targets


class ServiceSync:
    """Follows Services and Endpoints in ``store``; serves them on ``network``."""

    def __init__(self, store, network: PodNetwork, hosts: HostsFile):
        self.store, self.network, self.hosts = store, network, hosts
        self.proxy = ServiceProxy()
        self._served: dict[str, set[int]] = {}  # "namespace/name" -> ports listened on
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        queue = self.store.subscribe()
        for service in self.store.list("Service"):
            await self._sync(service["metadata"]["namespace"], service["metadata"]["name"])
        self._task = asyncio.create_task(self._follow(queue))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.proxy.close_all()

    async def _follow(self, queue: asyncio.Queue) -> None:
        while True:
            _, obj = await queue.get()
            if obj.get("kind") in ("Service", "Endpoints"):
                try:
                    await self._sync(obj["metadata"]["namespace"], obj["metadata"]["name"])
                except Exception:
                    log.exception("services: %s/%s", obj["metadata"]["namespace"], obj["metadata"]["name"])

    async def _sync(self, namespace: str, name: str) -> None:
        key = f"{namespace}/{name}"
        service = self.store.get("Service", name, namespace)
        endpoints = self.store.get("Endpoints", name, namespace)
        if service is None or service["metadata"].get("deletionTimestamp"):
            for port in self._served.pop(key, set()):
                await self.proxy.close(self.network.service_ip(key), port)
            self.hosts.set_service(namespace, name, None)
            return
        spec = service["spec"]
        if spec.get("clusterIP") == "None":
            ready = [t for p in spec.get("ports") or [] for t in _targets(service, endpoints, p)]
            self.hosts.set_service(namespace, name, ready[0][0] if ready else None)
            return
        address = self.network.service_ip(key)
        if spec.get("clusterIP") != address:
            self.store.patch(
                "Service", name, namespace, {"spec": {"clusterIP": address, "clusterIPs": [address]}}
            )
        self.hosts.set_service(namespace, name, address)
        wanted = set()
        for port in spec.get("ports") or []:
            if port.get("protocol", "TCP") != "TCP":
                continue
            wanted.add(port["port"])
            await self.proxy.serve(address, port["port"], _targets(service, endpoints, port))
        for stale in self._served.get(key, set()) - wanted:
            await self.proxy.close(address, stale)
        self._served[key] = wanted

    def expose_host_port(
        self, namespace: str, name: str, port: int, host_port: int, port_name: str = "http"
    ) -> str:
        """A Service ``name`` whose endpoint is 127.0.0.1:``host_port`` on this machine; its ClusterIP.

        For what runs outside the cluster (the stand-in API server, the identity provider, the
        S3 server): a Service without a selector and hand-made Endpoints, as one would name an
        external database in a real cluster.
        """
        self.store.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"ports": [{"name": port_name, "port": port, "protocol": "TCP"}]},
            }
        )
        self.store.create(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": namespace},
                "subsets": [
                    {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": port_name, "port": host_port}]}
                ],
            }
        )
        return self.network.service_ip(f"{namespace}/{name}")
