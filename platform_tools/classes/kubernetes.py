"""A class on Kubernetes: `parhelion class prewarm|close NAME --kubernetes`.

Prewarm scales the chart's placeholders to the class (``placeholders``). Close:

The same steps as on one machine, through the cluster's APIs: the class is marked closed in
the platform ConfigMap (members lose access as the hub re-reads it), running servers are
stopped through the hub's API, each student's home volume (found by the labels and owner
annotation the meter uses) is snapshotted and deleted, or deleted, or kept, as the course
says, and the final cost report comes from the accounting service, which holds the ledger.
The snapshot protects its source: Kubernetes keeps the claim until the snapshot is taken.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from platform_tools.classes.course import ClassError, class_of
from platform_tools.classes.placeholders import Placeholders, scale_placeholders
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
    homes: dict[str, str] = field(default_factory=dict)  # claim -> "snapshot <name>", "deleted", "kept"


def _snapshot_name(claim: str, class_name: str) -> str:
    return f"{claim}-{class_name}-final"[:253]


async def close_kubernetes(
    core_api,
    custom_api,
    namespace: str,
    configmap: str,
    name: str,
    snapshot_class: str | None,
    hub: HubAdmin | None = None,
) -> KubeCloseResult:
    current = await core_api.read_namespaced_config_map(configmap, namespace)
    source = f"ConfigMap {namespace}/{configmap}"
    text = current.data[CONFIGMAP_KEY]
    group = class_of(parse_platform(text, source=source), name)
    if group.course.homes == "archive" and not snapshot_class:
        raise ClassError(
            f"class {name!r} archives homes: give --snapshot-class (a VolumeSnapshotClass of the cluster)"
        )
    closed = group.model_dump(mode="json", exclude_none=True)
    closed["course"]["status"] = "closed"
    new_text = changed_text(text, PlatformChange(groups={name: closed}), source=source)
    await core_api.patch_namespaced_config_map(configmap, namespace, {"data": {CONFIGMAP_KEY: new_text}})

    result = KubeCloseResult()
    members = set(group.members)
    if hub is not None:
        for user in group.members:
            if await hub.stop_server(user):
                result.stopped.append(user)
    claims = await core_api.list_namespaced_persistent_volume_claim(
        namespace, label_selector=f"{METERED}=true,{KIND}=home"
    )
    for claim in claims.items:
        owner = (claim.metadata.annotations or {}).get(USER)
        if owner not in members:
            continue
        claim_name = claim.metadata.name
        if group.course.homes == "keep":
            result.homes[claim_name] = "kept"
            continue
        if group.course.homes == "archive":
            snapshot = _snapshot_name(claim_name, name)
            body = {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshot",
                "metadata": {
                    "name": snapshot,
                    "namespace": namespace,
                    "labels": {"parhelion.dev/class": name},
                    "annotations": {USER: owner},
                },
                "spec": {
                    "volumeSnapshotClassName": snapshot_class,
                    "source": {"persistentVolumeClaimName": claim_name},
                },
            }
            await custom_api.create_namespaced_custom_object(*SNAPSHOTS[:2], namespace, SNAPSHOTS[2], body)
            result.homes[claim_name] = f"snapshot {snapshot}"
        else:
            result.homes[claim_name] = "deleted"
        await core_api.delete_namespaced_persistent_volume_claim(claim_name, namespace)
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
) -> tuple[KubeCloseResult, Path | None]:
    """`parhelion class close --kubernetes`: close, then fetch the final cost report to ``report``
    (default ``NAME-final.csv``) from the accounting service through the hub's proxy."""
    import base64

    from kubernetes_asyncio import client

    async with (
        api_client(release.configuration, release.kubeconfig) as api,
        contextlib.AsyncExitStack() as stack,
    ):
        core = client.CoreV1Api(api)
        admin = token = None
        if hub is not None:
            secret = await core.read_namespaced_secret(hub.token_secret, release.namespace)
            token = base64.b64decode(secret.data["token"]).decode()
            admin = await stack.enter_async_context(HubAdmin(hub_api(hub.url), token))
        result = await close_kubernetes(
            core,
            client.CustomObjectsApi(api),
            release.namespace,
            release.configmap,
            name,
            snapshot_class,
            admin,
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
