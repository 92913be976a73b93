"""A traefik stand-in: routes dask-gateway's IngressRoutes from the API, as traefik's CRD provider.

Traefik has no binary in any registry this machine reaches, so its pods run no process: the
kubelet gives a traefik pod an address on this machine and this stand-in listens there, on
the entrypoints its arguments name (``--entrypoints.web.address=:8000``). It reads, from the
API stand-in, the IngressRoute, IngressRouteTCP and Middleware objects that match the pod's
``--providers.kubernetescrd.labelselector`` (the chart's, and the ones dask-gateway's controller
creates for each cluster), as traefik's Kubernetes CRD provider does, and routes:

* a TLS connection by its ClientHello's server name to the IngressRouteTCP whose
  ``HostSNI(...)`` matches, passed through untouched (``tls.passthrough``: the Dask scheduler
  ends TLS, as it does behind the real traefik);
* plain HTTP by the matching ``PathPrefix(...)`` of an IngressRoute with the highest priority
  (traefik's: the route's ``priority``, by default its rule's length), with its
  stripPrefix / stripPrefixRegex middlewares applied to the path; each request is routed on its
  own (the upstream is asked to close after answering, so a client's next request comes on a
  new connection; WebSocket upgrades keep theirs);
* ``GET /ping`` on the ``traefik`` entrypoint, its readiness probe.

Services are resolved through their Endpoints, as traefik does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from tests.rehearsal.network import splice

log = logging.getLogger(__name__)


def server_name(hello: bytes) -> str | None:
    """The SNI host name of a TLS ClientHello record, or None."""
    try:
        if hello[0] != 0x16 or hello[5] != 0x01:
            return None
        at = 5 + 4 + 2 + 32  # record header, handshake header, version, random
        at += 1 + hello[at]  # session id
        at += 2 + int.from_bytes(hello[at : at + 2], "big")  # cipher suites
        at += 1 + hello[at]  # compression methods
        end = at + 2 + int.from_bytes(hello[at : at + 2], "big")
        at += 2
        while at + 4 <= end:
            kind, length = (
                int.from_bytes(hello[at : at + 2], "big"),
                int.from_bytes(hello[at + 2 : at + 4], "big"),
            )
            if kind == 0:  # server_name: list length, name type, name length, name
                size = int.from_bytes(hello[at + 7 : at + 9], "big")
                return hello[at + 9 : at + 9 + size].decode()
            at += 4 + length
    except IndexError:
        return None
    return None


def _label_selector(args: list[str]) -> dict[str, str]:
    for arg in args:
        if arg.startswith("--providers.kubernetescrd.labelselector="):
            return dict(part.split("=", 1) for part in arg.split("=", 1)[1].split(","))
    return {}


def _entrypoints(args: list[str]) -> dict[str, int]:
    points = {}
    for arg in args:
        found = re.fullmatch(r"--entrypoints\.(\w+)\.address=:(\d+)(?:/tcp)?", arg)
        if found:
            points[found.group(1)] = int(found.group(2))
    return points


def _closing(headers: bytes) -> bytes:
    """Request headers asking the upstream to close after its answer (unless upgrading)."""
    lines = headers.split(b"\r\n")
    if any(line.lower().startswith(b"upgrade:") for line in lines):
        return headers
    kept = [line for line in lines if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([b"Connection: close", *kept])


class TraefikStandIn:
    """Serves one traefik pod's entrypoints at ``address`` from the routes in the API."""

    def __init__(self, store, pod: dict, address: str):
        self.store, self.address = store, address
        container = pod["spec"]["containers"][0]
        args = [*(container.get("command") or []), *(container.get("args") or [])]
        self.selector = _label_selector(args)
        self.entrypoints = _entrypoints(args)
        self._servers: list[asyncio.base_events.Server] = []

    async def start(self) -> None:
        for name, port in self.entrypoints.items():
            handler = self._ping if name == "traefik" else (lambda r, w, name=name: self._route(name, r, w))
            self._servers.append(await asyncio.start_server(handler, self.address, port, reuse_address=True))

    async def stop(self) -> None:
        for server in self._servers:
            server.close()

    def _objects(self, kind: str) -> list[dict]:
        return [
            o
            for o in self.store.list(kind)
            if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in self.selector.items())
        ]

    def _endpoint(self, namespace: str, service: str, port: int) -> tuple[str, int] | None:
        spec = (self.store.get("Service", service, namespace) or {}).get("spec") or {}
        names = {p.get("name") for p in spec.get("ports") or [] if p.get("port") == port}
        for subset in (self.store.get("Endpoints", service, namespace) or {}).get("subsets") or []:
            for target in subset.get("ports") or []:
                if target.get("name") in names or len(subset["ports"]) == 1:
                    for address in subset.get("addresses") or []:
                        return address["ip"], target["port"]
        return None

    async def _ping(self, reader, writer) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
            await writer.drain()
        writer.close()

    async def _route(self, entrypoint: str, reader, writer) -> None:
        try:
            first = await reader.read(5)
            if first[:1] == b"\x16":
                record = first + await reader.readexactly(int.from_bytes(first[3:5], "big"))
                await self._tcp(entrypoint, server_name(record), record, reader, writer)
            else:
                head = first + await reader.readuntil(b"\r\n\r\n")
                await self._http(entrypoint, head, reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()

    async def _tcp(self, entrypoint, name, record, reader, writer) -> None:
        for route_set in self._objects("IngressRouteTCP"):
            spec = route_set["spec"]
            if entrypoint not in spec.get("entryPoints", [entrypoint]):
                continue
            for route in spec.get("routes") or []:
                if f"HostSNI(`{name}`)" in route.get("match", ""):
                    service = route["services"][0]
                    namespace = service.get("namespace", route_set["metadata"]["namespace"])
                    target = self._endpoint(namespace, service["name"], service["port"])
                    if target:
                        await self._connect(target, record, reader, writer)
                        return
        log.info("traefik stand-in: no TCP route for SNI %r", name)
        writer.close()

    async def _http(self, entrypoint, head: bytes, reader, writer) -> None:
        request_line, _, rest = head.partition(b"\r\n")
        method, path, version = request_line.decode("latin-1").split(" ", 2)
        best = None
        for route_set in self._objects("IngressRoute"):
            spec = route_set["spec"]
            if entrypoint not in spec.get("entryPoints", [entrypoint]):
                continue
            for route in spec.get("routes") or []:
                prefix = re.search(r"PathPrefix\(`([^`]*)`\)", route.get("match", ""))
                # traefik's rank: the route's priority, by default the length of its rule
                rank = route.get("priority") or len(route.get("match", ""))
                if prefix and path.startswith(prefix.group(1)) and (not best or rank > best[0]):
                    best = (rank, route, route_set["metadata"]["namespace"])
        if not best:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nNot Found")
            await writer.drain()
            writer.close()
            return
        _, route, namespace = best
        for middleware in route.get("middlewares") or []:
            path = self._strip(middleware.get("namespace", namespace), middleware["name"], path)
        service = route["services"][0]
        target = self._endpoint(service.get("namespace", namespace), service["name"], service["port"])
        if target is None:
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            writer.close()
            return
        await self._connect(
            target, f"{method} {path} {version}\r\n".encode("latin-1") + _closing(rest), reader, writer
        )

    def _strip(self, namespace: str, name: str, path: str) -> str:
        middleware = self.store.get("Middleware", name, namespace) or {}
        spec = middleware.get("spec") or {}
        for prefix in (spec.get("stripPrefix") or {}).get("prefixes") or []:
            if path.startswith(prefix):
                return path[len(prefix) :] or "/"
        for pattern in (spec.get("stripPrefixRegex") or {}).get("regex") or []:
            found = re.match(pattern, path)
            if found:
                return path[found.end() :] or "/"
        return path

    async def _connect(self, target, first: bytes, reader, writer) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        upstream_writer.write(first)
        await upstream_writer.drain()
        await splice(reader, writer, upstream_reader, upstream_writer)
