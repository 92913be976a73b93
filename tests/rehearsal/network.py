"""The pod network of the rehearsal: the CNI and kube-proxy stand-ins.

Pods listen on 0.0.0.0 and on the same ports as one another (every hub on 8081, every user's
server on 8888), as they may in a cluster where each has an address of its own. So each pod
here gets a network namespace of its own, joined by a veth pair to a bridge that exists only on
this machine (no uplink, no NAT: nothing outside the machine can reach a pod, and no pod reaches
beyond the machine), with an address from a private /16 chosen per run. That address, not
127.0.0.N, is the pod's: loopback addresses cannot leave a namespace.

Services get a ClusterIP on the same bridge. As kube-proxy did in its userspace mode, a
listener on ClusterIP:port forwards each connection to one ready endpoint (the Service's
Endpoints object, which the endpoints controller stand-in keeps) at its targetPort. A Service
with no selector and hand-made Endpoints at 127.0.0.1 exposes a process of THIS machine (the
stand-in API server, the identity provider, the S3 server) to the pods, since the listener runs
here. Names resolve through a hosts file (``name``, ``name.namespace``, ``...svc.cluster.local``)
bound at /etc/hosts in each pod and rewritten in place when Services change.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import random
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)
POD_NETWORK_DIR = "/run/parhelion-pod-network"  # where a pod sees its hosts and resolv.conf


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class PodNetwork:
    """A host-only bridge, a network namespace per pod, and ClusterIPs for Services."""

    def __init__(self, state: Path):
        self.state = state
        self.tag = f"{random.randrange(16**5):05x}"
        second = random.randrange(64, 250)
        self.subnet = ipaddress.ip_network(f"10.{second}.0.0/16")
        self.gateway = f"10.{second}.0.1"
        self.bridge = f"ph{self.tag}b"
        self._pods: dict[str, tuple[str, str]] = {}  # pod key -> (namespace name, address)
        self._services: dict[str, str] = {}  # "namespace/name" -> ClusterIP
        self._next_pod = 10
        self._next_service = 10

    def up(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        # A bridge takes the lowest MAC of its ports unless given one: each new pod's veth
        # could change it, and pods' ARP entries for the Services then pointed nowhere for
        # half a minute (the hub once timed out adding a route to the proxy so).
        mac = "02:" + ":".join(f"{random.randrange(256):02x}" for _ in range(5))
        _ip("link", "set", self.bridge, "address", mac)
        _ip("addr", "add", f"{self.gateway}/16", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def down(self) -> None:
        for key in list(self._pods):
            self.remove_pod(key)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", self.bridge)

    def add_pod(self, key: str, on_host: bool = False) -> tuple[str | None, str]:
        """A namespace for pod ``key`` (its own loopback and eth0); returns (netns path, address).

        ``on_host``: no namespace, the address is bound on this machine's end of the bridge, for
        a pod whose process is a stand-in running here (traefik's).
        """
        if key in self._pods:
            name, address = self._pods[key]
            return (f"/run/netns/{name}" if name else None), address
        number = self._next_pod
        self._next_pod += 1
        address = str(self.subnet.network_address + (1 << 8) + number)
        if on_host:
            _ip("addr", "add", f"{address}/32", "dev", self.bridge)
            self._pods[key] = ("", address)
            return None, address
        name, host_end = f"ph{self.tag}p{number}", f"ph{self.tag}h{number}"
        _ip("netns", "add", name)
        self._pods[key] = (name, address)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", name)
        _ip("link", "set", host_end, "master", self.bridge, "up")
        _ip("-n", name, "addr", "add", f"{address}/16", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "link", "set", "lo", "up")
        # no default route: the pod reaches the /16 (pods, Services, this machine's exposed
        # processes) and nothing else, whatever this machine forwards
        return f"/run/netns/{name}", address

    def remove_pod(self, key: str) -> None:
        name, address = self._pods.pop(key, (None, None))
        if name == "":
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("addr", "del", f"{address}/32", "dev", self.bridge)
        elif name:
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", name)  # its eth0 goes with it, and the veth's host end

    def service_ip(self, key: str) -> str:
        """The ClusterIP of Service ``namespace/name``, allocated (and bound to the bridge) once."""
        if key not in self._services:
            address = str(self.subnet.network_address + (2 << 8) + self._next_service)
            self._next_service += 1
            _ip("addr", "add", f"{address}/32", "dev", self.bridge)
            self._services[key] = address
        return self._services[key]


class HostsFile:
    """/etc/hosts (and resolv.conf) of every pod: the cluster's Service names, then its own.

    Each pod has a folder of its own holding both, bound in the pod at ``POD_NETWORK_DIR``;
    its /etc/hosts and /etc/resolv.conf are symlinks into it (tests/rehearsal/sandbox.py). A
    change is written to a new file renamed over the old one, so a lookup never reads a
    half-written file (one that did made resolvers fall back to DNS and time out).
    """

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.entries: dict[str, list[str]] = {}  # address -> names
        self._pods: dict[Path, tuple[str, str]] = {}  # pod folder -> (address, hostname)

    def for_pod(self, key: str, address: str, hostname: str) -> Path:
        """The pod's folder (hosts, resolv.conf), written now and kept up to date."""
        folder = self.folder / key.replace("/", "_")
        folder.mkdir(exist_ok=True)
        # nothing answers DNS in a pod's namespace: fail at once, never wait for a server
        (folder / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        self._pods[folder] = (address, hostname)
        self._write(folder)
        return folder

    def forget(self, key: str) -> None:
        folder = self.folder / key.replace("/", "_")
        self._pods.pop(folder, None)
        shutil.rmtree(folder, ignore_errors=True)

    def set_service(self, namespace: str, name: str, address: str | None) -> None:
        names = [
            name,
            f"{name}.{namespace}",
            f"{name}.{namespace}.svc",
            f"{name}.{namespace}.svc.cluster.local",
        ]
        before = {ip: list(listed) for ip, listed in self.entries.items()}
        for listed in self.entries.values():
            for each in names:
                if each in listed:
                    listed.remove(each)
        if address:
            self.entries.setdefault(address, []).extend(names)
        if {ip: n for ip, n in self.entries.items() if n} != {ip: n for ip, n in before.items() if n}:
            for folder in list(self._pods):
                self._write(folder)

    def _write(self, folder: Path) -> None:
        address, hostname = self._pods[folder]
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback", f"{address} {hostname}"]
        lines += [f"{ip} {' '.join(names)}" for ip, names in self.entries.items() if names]
        fresh = folder / "hosts.new"
        fresh.write_text("\n".join(lines) + "\n")
        fresh.chmod(0o644)
        os.replace(fresh, folder / "hosts")


class ServiceProxy:
    """kube-proxy's userspace mode: ClusterIP:port listeners forwarding to ready endpoints."""

    def __init__(self):
        self._listeners: dict[tuple[str, int], asyncio.base_events.Server] = {}
        self._targets: dict[tuple[str, int], list[tuple[str, int]]] = {}

    async def serve(self, cluster_ip: str, port: int, targets: list[tuple[str, int]]) -> None:
        """Forward ``cluster_ip:port`` to ``targets`` (address, port) from now on; [] refuses."""
        self._targets[(cluster_ip, port)] = targets
        if (cluster_ip, port) not in self._listeners:
            self._listeners[(cluster_ip, port)] = await asyncio.start_server(
                lambda r, w: self._forward(cluster_ip, port, r, w), cluster_ip, port, reuse_address=True
            )

    async def close(self, cluster_ip: str, port: int) -> None:
        self._targets.pop((cluster_ip, port), None)
        server = self._listeners.pop((cluster_ip, port), None)
        if server:
            server.close()

    async def close_all(self) -> None:
        for key in list(self._listeners):
            await self.close(*key)

    async def _forward(self, cluster_ip: str, port: int, reader, writer) -> None:
        targets = self._targets.get((cluster_ip, port)) or []
        if not targets:
            writer.close()
            return
        address, target_port = random.choice(targets)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(address, target_port)
        except OSError as error:
            log.info("service %s:%s -> %s:%s refused: %s", cluster_ip, port, address, target_port, error)
            writer.close()
            return
        await splice(reader, writer, upstream_reader, upstream_writer)


async def splice(reader, writer, upstream_reader, upstream_writer) -> None:
    """Copy bytes both ways until either side closes."""

    async def pipe(source, sink) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()

    await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
