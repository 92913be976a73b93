"""A Kubernetes API server STAND-IN: the REST API of kube-apiserver over an in-memory store.

No kube-apiserver can run on these machines, so the rehearsal serves the API's HTTP contract
itself, generically for every kind: the URL layout (``/api/v1/...``, ``/apis/<group>/<version>
/...``, namespaced and cluster-scoped, ``status`` and ``scale`` subresources), discovery, list
and get, create, replace with resourceVersion conflicts, the three patch formats, delete with
grace periods and propagation, ``dryRun``, label and field selectors, and watches that resume
from a resourceVersion or end with 410 Gone. Clients are the real ones: KubeSpawner and
dask-gateway (kubernetes_asyncio), kubernetes.core (the kubernetes client's DynamicClient).

What it does not do: authentication and authorization (any bearer token is accepted; the
Authorization header of every request is kept in :attr:`ApiServer.requests` for tests to
check), admission, server-side apply (415), pagination (``limit`` is ignored: every list is
one page), watch bookmarks, protobuf, ``/openapi`` (404). Storage semantics and their
approximations are described in ``store``; strategic merge patch's in ``patches``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web

from tests.rehearsal import discovery
from tests.rehearsal.errors import ApiError
from tests.rehearsal.patches import MERGE
from tests.rehearsal.resources import ResourceType
from tests.rehearsal.scale import scale_of
from tests.rehearsal.seeding import seed
from tests.rehearsal.selectors import labels_match, parse_field_selector, parse_label_selector
from tests.rehearsal.store import Change, ObjectStore

__all__ = ["ApiError", "ApiServer", "ObjectStore", "SeenRequest", "forbidden", "seed", "serving_api"]
_POLL = 1.0  # how often an idle watch checks that its client is still connected


@dataclass
class SeenRequest:
    """One request as the stand-in received it, for tests that assert on what clients sent."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: object
    authorization: str | None

    @property
    def dry_run(self) -> bool:
        return "dryRun" in self.query


@dataclass
class Target:
    """What a resource URL names."""

    resource: ResourceType
    version: str
    namespace: str | None
    name: str | None = None
    subresource: str | None = None
    watch: bool = False


@dataclass
class _Selection:
    namespace: str | None
    labels: list = field(default_factory=list)
    fields: object = None

    def matches(self, obj: dict) -> bool:
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return labels_match(self.labels, obj) and self.fields(obj)


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


class ApiServer:
    """The HTTP face of an :class:`ObjectStore` (``app()`` gives the aiohttp application)."""

    def __init__(self, store: ObjectStore, refuse: Callable[[SeenRequest], ApiError | None] | None = None):
        """``refuse`` stands in for what answers before storage does (RBAC's 403 Forbidden, an
        overloaded server's 503, 429 throttling): an ApiError for a request makes its answer."""
        self.store = store
        self.refuse = refuse
        self.requests: list[SeenRequest] = []
        self._watches: set[asyncio.Queue] = set()
        self._host = "127.0.0.1"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._recorded], client_max_size=64 * 2**20)
        app.router.add_get("/version", self._version)
        for probe in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(probe, self._ok)
        app.router.add_route("*", "/api", self._api)
        app.router.add_route("*", "/apis", self._api)
        app.router.add_route("*", "/api/{tail:.*}", self._api)
        app.router.add_route("*", "/apis/{tail:.*}", self._api)
        app.on_shutdown.append(self._end_watches)
        return app

    def patches(self) -> list[SeenRequest]:
        return [r for r in self.requests if r.method == "PATCH"]

    # ---- plumbing ----------------------------------------------------------------------------
    @web.middleware
    async def _recorded(self, request: web.Request, handler):
        text = await request.text() if request.can_read_body else ""
        try:
            body = json.loads(text) if text else None
        except json.JSONDecodeError:
            body = text
        self.requests.append(
            SeenRequest(
                request.method,
                request.path,
                dict(request.query),
                request.content_type,
                body,
                request.headers.get("Authorization"),
            )
        )
        try:
            if self.refuse is not None and (refusal := self.refuse(self.requests[-1])) is not None:
                raise refusal
            return await handler(request)
        except ApiError as error:
            return _json(error.status(), error.code)
        except json.JSONDecodeError as error:
            return _json(ApiError(400, "BadRequest", f"invalid JSON: {error}").status(), 400)

    async def _end_watches(self, app: web.Application) -> None:
        for queue in list(self._watches):
            queue.put_nowait(None)

    async def _version(self, request: web.Request) -> web.Response:
        return _json(discovery.KUBERNETES_VERSION)

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _target(self, path: str) -> Target | web.Response:
        """Discovery documents are answered here; resource URLs become a :class:`Target`."""
        parts = [p for p in path.split("/") if p]
        types = self.store.types()
        if parts == ["api"]:
            return _json(discovery.api_versions(self._host))
        if parts == ["apis"]:
            return _json(discovery.api_group_list(types))
        if parts[0] == "apis" and len(parts) == 2:
            return self._found(discovery.api_group(types, parts[1]), path)
        group, version, rest = (
            ("", parts[1], parts[2:]) if parts[0] == "api" else (parts[1], parts[2], parts[3:])
        )
        if not rest:
            return self._found(discovery.api_resource_list(types, group, version), path)
        watch = rest[0] == "watch"
        rest = rest[1:] if watch else rest
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and self.store.resource_at(group, version, rest[2]):
            namespace, rest = rest[1], rest[2:]
        resource = self.store.resource_at(group, version, rest[0]) if rest else None
        if resource is None or len(rest) > 3 or (namespace is not None and not resource.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource is not None and subresource not in resource.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if name is not None and resource.namespaced and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return Target(resource, version, namespace, name, subresource, watch)

    @staticmethod
    def _found(document: dict | None, path: str) -> web.Response:
        if document is None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        return _json(document)

    def _present(self, obj: dict, target: Target) -> dict:
        """An object as served at the requested version (all versions are one object here)."""
        shown = copy.deepcopy(obj)
        if shown.get("kind") != "Scale":
            shown["apiVersion"] = target.resource.api_version(target.version)
        return shown

    # ---- verbs -------------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.StreamResponse:
        self._host = request.host
        target = self._target(request.path)
        if isinstance(target, web.Response):
            return target
        dry_run = request.query.get("dryRun") == "All"
        method = request.method
        if target.name is None:
            if method == "GET" and (target.watch or request.query.get("watch", "").lower() in ("true", "1")):
                return await self._watch(request, target)
            if method == "GET":
                return self._list(request, target)
            if method == "POST":
                return await self._create(request, target, dry_run)
            if method == "DELETE":
                return self._delete_collection(request, target, dry_run)
        elif method == "GET":
            return self._get(target)
        elif method == "PUT":
            return await self._replace(request, target, dry_run)
        elif method == "PATCH":
            body = json.loads(await request.text())
            changed = self.store.patch_resource(
                target.resource,
                target.name,
                target.namespace,
                body,
                request.content_type or MERGE,
                target.subresource,
                dry_run,
            )
            return _json(self._present(changed, target))
        elif method == "DELETE" and target.subresource is None:
            return await self._delete(request, target, dry_run)
        raise ApiError(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
        )

    def _selection(self, request: web.Request, target: Target) -> _Selection:
        return _Selection(
            target.namespace,
            parse_label_selector(request.query.get("labelSelector")),
            parse_field_selector(request.query.get("fieldSelector")),
        )

    def _list(self, request: web.Request, target: Target) -> web.Response:
        selection = self._selection(request, target)
        items = [
            self._present(obj, target)
            for obj in self.store.objects(target.resource, target.namespace)
            if selection.matches(obj)
        ]
        return _json(
            {
                "kind": f"{target.resource.kind}List",
                "apiVersion": target.resource.api_version(target.version),
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": items,
            }
        )

    def _get(self, target: Target) -> web.Response:
        found = self.store.read(target.resource, target.name, target.namespace)
        if target.subresource == "scale":
            return _json(scale_of(target.resource, found))
        return _json(self._present(found, target))

    async def _body(self, request: web.Request, target: Target) -> dict:
        body = json.loads(await request.text() or "null")
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        meta = body.setdefault("metadata", {})
        if target.resource.namespaced and target.subresource != "scale":
            if meta.get("namespace") and meta["namespace"] != target.namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = target.namespace
        if target.name is not None and meta.get("name", target.name) != target.name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        if target.subresource != "scale":
            if body.get("kind", target.resource.kind) != target.resource.kind:
                raise ApiError(
                    400, "BadRequest", f"the body's kind {body.get('kind')!r} is not {target.resource.kind}"
                )
            body["kind"] = target.resource.kind
            body["apiVersion"] = target.resource.api_version(target.version)
        return body

    async def _create(self, request: web.Request, target: Target, dry_run: bool) -> web.Response:
        if target.resource.namespaced and target.namespace is None:
            raise ApiError(405, "MethodNotAllowed", "create a namespaced object in its namespace's URL")
        created = self.store.create(await self._body(request, target), dry_run=dry_run)
        return _json(self._present(created, target), 201)

    async def _replace(self, request: web.Request, target: Target, dry_run: bool) -> web.Response:
        body = await self._body(request, target)
        replaced = self.store.replace_resource(
            target.resource, target.name, target.namespace, body, target.subresource, dry_run
        )
        return _json(self._present(replaced, target))

    @staticmethod
    def _delete_options(request: web.Request, body: dict | None) -> tuple[bool, str]:
        options = dict(request.query) | (body or {})
        grace = options.get("gracePeriodSeconds")
        propagation = options.get("propagationPolicy") or (
            "Orphan" if str(options.get("orphanDependents")).lower() == "true" else "Background"
        )
        return grace is None or int(grace) > 0, propagation

    async def _delete(self, request: web.Request, target: Target, dry_run: bool) -> web.Response:
        text = await request.text()
        grace, propagation = self._delete_options(request, json.loads(text) if text else None)
        result = self.store.delete_resource(
            target.resource, target.name, target.namespace, grace, propagation, dry_run
        )
        try:
            pending = self.store.read(target.resource, target.name, target.namespace)["metadata"]["uid"]
        except ApiError:
            pending = None
        pending = pending == result["metadata"]["uid"]
        return _json(self._present(result, target), 202 if pending and not dry_run else 200)

    def _delete_collection(self, request: web.Request, target: Target, dry_run: bool) -> web.Response:
        grace, propagation = self._delete_options(request, None)
        selection = self._selection(request, target)
        chosen = [o for o in self.store.objects(target.resource, target.namespace) if selection.matches(o)]
        deleted = [
            self._present(
                self.store.delete_resource(
                    target.resource,
                    obj["metadata"]["name"],
                    obj["metadata"].get("namespace"),
                    grace,
                    propagation,
                    dry_run,
                ),
                target,
            )
            for obj in list(chosen)
        ]
        return _json(
            {
                "kind": f"{target.resource.kind}List",
                "apiVersion": target.resource.api_version(target.version),
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": deleted,
            }
        )

    # ---- watch -------------------------------------------------------------------------------
    def _event(self, change: Change, selection: _Selection, target: Target) -> dict | None:
        """A change as this watch reports it: objects entering or leaving its selection are
        ADDED or DELETED, as the API server's watch cache reports them."""
        if change.resource.storage_key != target.resource.storage_key:
            return None
        now_matches = selection.matches(change.obj)
        if change.type == "DELETED":
            event_type = "DELETED" if now_matches else None
        elif change.type == "ADDED":
            event_type = "ADDED" if now_matches else None
        else:
            before = change.old is not None and selection.matches(change.old)
            event_type = {(True, True): "MODIFIED", (False, True): "ADDED", (True, False): "DELETED"}.get(
                (before, now_matches)
            )
        if event_type is None:
            return None
        return {"type": event_type, "object": self._present(change.obj, target)}

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        selection = self._selection(request, target)
        since = request.query.get("resourceVersion") or "0"
        if not since.isdigit():
            raise ApiError(400, "BadRequest", f"resourceVersion: Invalid value: {since!r}")
        timeout = float(request.query["timeoutSeconds"]) if request.query.get("timeoutSeconds") else None
        queue: asyncio.Queue = asyncio.Queue()

        def listen(change: Change) -> None:
            queue.put_nowait(change)

        # Registering and reading the history happen in one step of the loop: no change between.
        self.store.add_listener(listen)
        self._watches.add(queue)
        if since == "0":
            first = [
                {"type": "ADDED", "object": self._present(obj, target)}
                for obj in self.store.objects(target.resource, target.namespace)
                if selection.matches(obj)
            ]
        else:
            history = self.store.history_since(int(since))
            if history is None:
                gone = ApiError(
                    410, "Expired", f"too old resource version: {since} ({self.store.resource_version})"
                )
                first = [{"type": "ERROR", "object": gone.status()}]
            else:
                first = [e for c in history if (e := self._event(c, selection, target))]
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            for event in first:
                await response.write(json.dumps(event).encode() + b"\n")
            if first and first[-1]["type"] == "ERROR":
                return response
            await self._stream(request, response, queue, selection, target, timeout)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.remove_listener(listen)
            self._watches.discard(queue)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def _stream(self, request, response, queue, selection, target, timeout) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        while True:
            wait = _POLL if deadline is None else min(_POLL, deadline - loop.time())
            if wait <= 0:
                return
            try:
                change = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return
                continue
            if change is None:  # the server is shutting down
                return
            if event := self._event(change, selection, target):
                await response.write(json.dumps(event).encode() + b"\n")


def forbidden(request: SeenRequest) -> ApiError:
    """A 403 as RBAC words it, for a ``refuse`` that denies a request."""
    parts = [p for p in request.path.split("/") if p]
    resource = parts[-2] if len(parts) >= 2 and parts[-2] != "namespaces" else parts[-1]
    return ApiError(
        403,
        "Forbidden",
        f'{resource} is forbidden: User "system:serviceaccount:stand-in" cannot '
        f"{request.method.lower()} resource {resource!r}",
    )


@contextlib.asynccontextmanager
async def serving_api(api: ObjectStore | ApiServer) -> AsyncIterator[str]:
    """The API (a store, or an ApiServer whose request log a test reads) on a free port of
    127.0.0.1; yields its URL (give clients a kubeconfig from ``kubeconfig_for``)."""
    from tests.stand_in_server import serving

    server = api if isinstance(api, ApiServer) else ApiServer(api)
    async with serving(server.app()) as url:
        yield url
