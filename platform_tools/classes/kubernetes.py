"""A class on Kubernetes: `parhelion class prewarm|close NAME --kubernetes`.

Prewarm scales the chart's placeholders to the class (``placeholders``). Close:

The same steps as on one machine, through the cluster's APIs: the class is marked closed in
the platform ConfigMap (members lose access as the hub re-reads it); from members who have no
other way in (``classes.revoke``) the hub's API takes back their tokens and servers and the
gateway's stop route their Dask clusters; each such student's home volume (found by the
labels and owner annotation the meter uses) is snapshotted and deleted, or deleted, or kept,
as the course says (members who keep access keep theirs); and the final cost report comes
from the accounting service, which holds the ledger. A claim is deleted only once its
VolumeSnapshot reports ``readyToUse`` (a snapshot still being cut can fail, and the home with
it); one not ready in time is kept, and close says so and can simply be run again.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from platform_tools.classes.course import ClassError, class_of
from platform_tools.classes.placeholders import Placeholders, scale_placeholders
from platform_tools.classes.revoke import Revoked, losing_access, revoke_access
from platform_tools.clients.gatewayadmin import GatewayAdmin
from platform_tools.clients.hubadmin import HubAdmin, HubAdminError
from platform_tools.clients.kubernetes import api_client
from platform_tools.config import PlatformConfig, parse_platform
from platform_tools.config.edit import PlatformChange, changed_text
from platform_tools.contract.labels import KIND, METERED, USER
from platform_tools.contract.names import CONFIGMAP_KEY, placeholder_statefulset, platform_configmap
from platform_tools.contract.services import AccountingPath, accounting_api, hub_api
from platform_tools.contract.tokens import authorization

SNAPSHOTS = ("snapshot.storage.k8s.io", "v1", "volumesnapshots")


@dataclass
class KubeCloseResult:
    stopped: list[str] = field(default_factory=list)
    homes: dict[str, str] = field(default_factory=dict)  # claim -> "snapshot <name>", "deleted", "kept"...
    revoked: dict[str, Revoked] = field(default_factory=dict)
    kept_access: list[str] = field(default_factory=list)


#: How long close waits for the home snapshots to be ready before it gives up (their claims
#: are kept; close is run again), and how often it looks.
SNAPSHOT_TIMEOUT_SECONDS = 900.0
SNAPSHOT_POLL_SECONDS = 2.0


def _snapshot_name(claim: str, class_name: str) -> str:
    return f"{claim}-{class_name}-final"[:253]


def _snapshot_body(namespace: str, class_name: str, claim: str, owner: str, snapshot_class: str) -> dict:
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": _snapshot_name(claim, class_name),
            "namespace": namespace,
            "labels": {"parhelion.dev/class": class_name},
            "annotations": {USER: owner},
        },
        "spec": {
            "volumeSnapshotClassName": snapshot_class,
            "source": {"persistentVolumeClaimName": claim},
        },
    }


async def _delete_claim(core_api, claim: str, namespace: str) -> None:
    try:
        await core_api.delete_namespaced_persistent_volume_claim(claim, namespace)
    except ApiException as error:
        if error.status != 404:  # gone already: a close run again
            raise


async def _delete_when_snapshotted(
    core_api, custom_api, namespace: str, waiting: dict[str, str], timeout: float, poll: float
) -> dict[str, str]:
    """Delete each claim once its snapshot reports ``status.readyToUse``; {claim: outcome}.

    A VolumeSnapshot only starts the copy: deleting the claim before the snapshot is ready can
    lose the home (the CSI driver may still be reading it, or the snapshot may fail). A claim
    whose snapshot is not ready within ``timeout`` is left in place, and the error names it.
    """
    done: dict[str, str] = {}
    problems: dict[str, str] = {}
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for snapshot, claim in list(waiting.items()):
            found = await custom_api.get_namespaced_custom_object(
                *SNAPSHOTS[:2], namespace, SNAPSHOTS[2], snapshot
            )
            status = found.get("status") or {}
            if status.get("readyToUse") is True:
                await _delete_claim(core_api, claim, namespace)
                done[claim] = f"snapshot {snapshot}"
                del waiting[snapshot]
            elif (status.get("error") or {}).get("message"):
                problems[snapshot] = status["error"]["message"]
        if not waiting:
            return done
        if asyncio.get_running_loop().time() >= deadline:
            pending = ", ".join(
                f"{snapshot} (claim {claim}{': ' + problems[snapshot] if snapshot in problems else ''})"
                for snapshot, claim in sorted(waiting.items())
            )
            raise ClassError(
                f"home snapshots not ready after {timeout:g} s: {pending}. Their claims are kept; "
                f"check them (kubectl -n {namespace} get volumesnapshot) and run close again."
            )
        await asyncio.sleep(poll)


async def close_kubernetes(
    core_api,
    custom_api,
    namespace: str,
    configmap: str,
    name: str,
    snapshot_class: str | None,
    hub: HubAdmin | None = None,
    gateway: GatewayAdmin | None = None,
    snapshot_timeout: float = SNAPSHOT_TIMEOUT_SECONDS,
    snapshot_poll: float = SNAPSHOT_POLL_SECONDS,
) -> KubeCloseResult:
    """Close the class in the ConfigMap, take back what members who lose access hold (with the
    hub: tokens, servers, and Dask clusters through the gateway), then their home claims."""
    current = await core_api.read_namespaced_config_map(configmap, namespace)
    source = f"ConfigMap {namespace}/{configmap}"
    text = current.data[CONFIGMAP_KEY]
    config = parse_platform(text, source=source)
    group = class_of(config, name)
    if group.course.homes == "archive" and not snapshot_class:
        raise ClassError(
            f"class {name!r} archives homes: give --snapshot-class (a VolumeSnapshotClass of the cluster)"
        )
    closed = group.model_dump(mode="json", exclude_none=True)
    closed["course"]["status"] = "closed"
    new_text = changed_text(text, PlatformChange(groups={name: closed}), source=source)
    await core_api.patch_namespaced_config_map(configmap, namespace, {"data": {CONFIGMAP_KEY: new_text}})

    result = KubeCloseResult()
    losing, result.kept_access = losing_access(parse_platform(new_text, source=source), list(group.members))
    if hub is not None:
        result.revoked = await revoke_access(hub, gateway if config.dask_gateway.enabled else None, losing)
        result.stopped = [user for user, done in result.revoked.items() if done.servers]
    claims = await core_api.list_namespaced_persistent_volume_claim(
        namespace, label_selector=f"{METERED}=true,{KIND}=home"
    )
    waiting: dict[str, str] = {}  # snapshot -> claim
    for claim in claims.items:
        owner = (claim.metadata.annotations or {}).get(USER)
        if owner not in group.members:
            continue
        claim_name = claim.metadata.name
        if owner in result.kept_access:
            result.homes[claim_name] = "kept (keeps access)"
        elif group.course.homes == "keep":
            result.homes[claim_name] = "kept"
        elif group.course.homes == "archive":
            body = _snapshot_body(namespace, name, claim_name, owner, snapshot_class)
            try:
                await custom_api.create_namespaced_custom_object(
                    *SNAPSHOTS[:2], namespace, SNAPSHOTS[2], body
                )
            except ApiException as error:
                if error.status != 409:  # taken by an earlier run of close: wait for it as well
                    raise
            waiting[body["metadata"]["name"]] = claim_name
        else:
            await _delete_claim(core_api, claim_name, namespace)
            result.homes[claim_name] = "deleted"
    if waiting:
        result.homes |= await _delete_when_snapshotted(
            core_api, custom_api, namespace, waiting, snapshot_timeout, snapshot_poll
        )
    return result


@dataclass(frozen=True)
class Release:
    """Where the chart is installed, and how to reach its cluster."""

    namespace: str
    name: str
    kubeconfig: Path | None = None
    configuration: object = None  # a kubernetes_asyncio Configuration (tests), over kubeconfig

    @property
    def configmap(self) -> str:
        return platform_configmap(self.name)

    @property
    def placeholders(self) -> str:
        return placeholder_statefulset(self.name)


async def read_platform(core_api, release: Release) -> PlatformConfig:
    """platform.yaml as the release's ConfigMap holds it now (errors name the ConfigMap)."""
    configmap = await core_api.read_namespaced_config_map(release.configmap, release.namespace)
    source = f"ConfigMap {release.namespace}/{release.configmap}"
    return parse_platform(configmap.data[CONFIGMAP_KEY], source=source)


async def prewarm_on_kubernetes(release: Release, name: str, stop: bool = False) -> Placeholders:
    """Scale the placeholders to the class's roster (or, with ``stop``, back to none)."""
    from kubernetes_asyncio import client

    async with api_client(release.configuration, release.kubeconfig) as api:
        platform = await read_platform(client.CoreV1Api(api), release)
        wanted = Placeholders.for_class(platform, name, release=stop)
        await scale_placeholders(client.AppsV1Api(api), release.namespace, release.placeholders, wanted)
        return wanted


@dataclass(frozen=True)
class HubAccess:
    """The hub, reached with a service token kept in a Secret (key ``token``)."""

    url: str
    token_secret: str


async def close_on_kubernetes(
    release: Release,
    name: str,
    snapshot_class: str | None,
    hub: HubAccess | None,
    report: Path | None = None,
    snapshot_timeout: float = SNAPSHOT_TIMEOUT_SECONDS,
) -> tuple[KubeCloseResult, Path | None]:
    """`parhelion class close --kubernetes`: close, then fetch the final cost report to ``report``
    (default ``NAME-final.csv``) from the accounting service through the hub's proxy.

    The token in ``hub.token_secret`` (the accounting service's) also reaches the gateway's
    stop route, through the hub's proxy, as the enforcer's calls do."""
    import base64

    from kubernetes_asyncio import client

    async with (
        api_client(release.configuration, release.kubeconfig) as api,
        contextlib.AsyncExitStack() as stack,
    ):
        core = client.CoreV1Api(api)
        admin = token = gateway = None
        if hub is not None:
            secret = await core.read_namespaced_secret(hub.token_secret, release.namespace)
            token = base64.b64decode(secret.data["token"]).decode()
            admin = await stack.enter_async_context(HubAdmin(hub_api(hub.url), token))
            gateway = GatewayAdmin(hub.url, token)
        result = await close_kubernetes(
            core,
            client.CustomObjectsApi(api),
            release.namespace,
            release.configmap,
            name,
            snapshot_class,
            admin,
            gateway,
            snapshot_timeout,
        )
        if hub is None:
            return result, None
        url = accounting_api(hub.url, AccountingPath.class_report(name))
        async with aiohttp.ClientSession(headers=authorization(token)) as session, session.get(url) as answer:
            if answer.status != 200:
                raise HubAdminError(f"the class report: HTTP {answer.status} from {url}")
            report = report or Path(f"{name}-final.csv")
            report.write_text(await answer.text())
        return result, report
