"""dask-gateway on Kubernetes, configured from platform.yaml.

The same decisions as the local gateway, with the kubernetes backend: cluster options
bounded by platform.yaml, the per-user aggregate limits (the user's clusters summed, as
locally), schedulers on the users pool and workers on the spot "dask-workers" pool (they
tolerate its taint; nothing else does), the image of the user's notebook server (the
client sends it) or the platform's Dask image, an idle timeout, and the labels and
annotations the meter charges pods by.

The limits count what the API holds, as the backend's informers see it (the rule:
platform_tools.gateway.limits): each DaskCluster's replicas, and its pods that have not
finished (a pod informer of the gateway's namespace). Informers see the gateway's own writes
late, so what it granted is counted until they show: a created cluster is reserved until its
DaskCluster event arrives, and a worker count it wrote counts until the informer has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dask_gateway_server.backends.kubernetes import KubeBackend
from dask_gateway_server.backends.kubernetes.utils import Informer
from dask_gateway_server.models import ClusterStatus
from dask_gateway_server.options import Options, String
from traitlets import Float, Unicode

from platform_tools.config import PlatformConfig
from platform_tools.config.configmap import (
    CONFIGMAP_VARIABLE,
    PATH_VARIABLE,
    ConfigMapMirror,
    platform_from_environment,
)
from platform_tools.config.models import DaskGatewayConfig
from platform_tools.contract.labels import DASK_WORKERS_POOL, USERS_POOL, metering_metadata
from platform_tools.contract.services import GATEWAY_SERVICE
from platform_tools.gateway.dashboards import DashboardGateMixin
from platform_tools.gateway.limits import AggregateLimitsMixin, ClusterUsage
from platform_tools.gateway.options import GIB, size_fields

SPOT_TAINT = {
    "key": "parhelion.dev/dask-worker",
    "operator": "Equal",
    "value": "true",
    "effect": "NoSchedule",
}


# What Dask pods run; the images put `dask` on the PATH (tests run them in the image's lock).
# Workers listen on pinned ports (one worker per pod), which the chart's NetworkPolicy admits
# between Dask pods - and nothing else of theirs, e.g. another cluster's dashboard.
WORKER_PORT, NANNY_PORT = 8789, 8790
SCHEDULER_COMMAND = ("dask", "scheduler")
WORKER_COMMAND = ("dask", "worker", "--worker-port", str(WORKER_PORT), "--nanny-port", str(NANNY_PORT))


#: Pod labels the dask-gateway controller sets (its get_labels): which cluster, which part.
CLUSTER_LABEL, COMPONENT_LABEL = "gateway.dask.org/cluster", "app.kubernetes.io/component"
#: A reservation the cluster informer never confirmed (created and deleted between two of its
#: lists) is dropped after this long.
RESERVATION_SECONDS = 600.0


class PodIndex:
    """Which pods of each cluster have not finished, from a pod informer's events.

    A pod counts from its creation (Pending) until it has Succeeded or Failed or is gone -
    also while it terminates - since until then it holds or may take a node's resources.
    """

    def __init__(self) -> None:
        self._pods: dict[str, dict[str, str]] = defaultdict(dict)  # cluster key -> pod -> component

    @staticmethod
    def _where(pod: dict) -> tuple[str, str, str] | None:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        if CLUSTER_LABEL not in labels:
            return None
        return (
            f"{meta.get('namespace')}.{labels[CLUSTER_LABEL]}",
            meta.get("name", ""),
            labels.get(COMPONENT_LABEL, ""),
        )

    def on_update(self, pod: dict, old: dict | None = None) -> None:
        where = self._where(pod)
        if where is None:
            return
        cluster, name, component = where
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self._forget(cluster, name)
        else:
            self._pods[cluster][name] = component

    def on_delete(self, pod: dict) -> None:
        where = self._where(pod)
        if where is not None:
            self._forget(where[0], where[1])

    def _forget(self, cluster: str, name: str) -> None:
        pods = self._pods.get(cluster)
        if pods is not None:
            pods.pop(name, None)
            if not pods:
                del self._pods[cluster]

    def of(self, cluster: str) -> tuple[bool, int]:
        """(its scheduler pod is unfinished, how many of its worker pods are)."""
        components = list(self._pods.get(cluster, {}).values())
        return "dask-scheduler" in components, components.count("dask-worker")

    def clusters(self) -> list[str]:
        return list(self._pods)


class ParhelionKubeBackend(DashboardGateMixin, AggregateLimitsMixin, KubeBackend):
    """The kubernetes backend with Parhelion's aggregate limits and dashboard gate (the chart
    routes ``/clusters/`` to this API server: gateway/dashboards.py).

    Clusters live in DaskCluster objects; the backend's informer has each one's replicas
    (the target worker count), and a pod informer of its namespace the pods that exist:
    the limits count the larger (platform_tools.gateway.limits). When platform.yaml is not
    mounted (the dask-gateway chart has no extra volumes), the backend follows its
    ConfigMap, so quota and budget changes apply with no restart, as on the hub.
    """

    platform_configmap = Unicode(
        "", config=True, help="The ConfigMap (this namespace) to follow platform.yaml from; empty: none."
    )
    platform_refresh_seconds = Float(30.0, config=True, help="How often the ConfigMap is read.")

    _mirror_task: asyncio.Task | None = None
    _pod_informer: Informer | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pods = PodIndex()
        # cluster key -> (username, config, when): created, not yet seen by the informer
        self.reservations: dict[str, tuple[str, dict, float]] = {}
        self.granted: dict[str, int] = {}  # cluster key -> the worker count last written

    async def setup(self, app: Any) -> None:
        await super().setup(app)
        # the namespace is a cluster option upstream (KubeClusterConfig), not the backend's:
        # the gateway's own, from its service account, unless configured otherwise
        namespace = self.cluster_config_class(parent=self).namespace
        self._pod_informer = Informer(
            parent=self,
            name="pod",
            client=self.core_client,
            method="list_namespaced_pod",
            method_kwargs={"namespace": namespace, "label_selector": self.label_selector},
            on_update=self.pods.on_update,
            on_delete=self.pods.on_delete,
        )
        await self._pod_informer.start()
        if self.platform_configmap:
            mirror = ConfigMapMirror(
                self.core_client,
                namespace,
                self.platform_configmap,
                Path(self.platform_config_path),
                interval=self.platform_refresh_seconds,
                logger=self.log,
            )
            self._mirror_task = asyncio.ensure_future(mirror.follow())

    async def cleanup(self) -> None:
        if self._mirror_task is not None:
            self._mirror_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._mirror_task
        if self._pod_informer is not None:
            await self._pod_informer.stop()
        await super().cleanup()

    # ------------------------------------------------------- what is counted

    def _record(self, cluster: Any) -> SimpleNamespace:
        return SimpleNamespace(name=cluster.name, username=cluster.username, config=cluster.config)

    def _active_clusters(self) -> list[Any]:
        return [self._record(c) for c in self.clusters.values() if c.status <= ClusterStatus.RUNNING]

    def _live_cluster(self, cluster_name: str) -> Any | None:
        cluster = self.clusters.get(cluster_name)
        return (
            self._record(cluster) if cluster is not None and cluster.status <= ClusterStatus.RUNNING else None
        )

    def _usage_records(self) -> Iterable[ClusterUsage]:
        """Every DaskCluster (the informer's cache), every reservation, and what their pods hold."""
        seen = set()
        for key, obj in list(self.informer.cache.items()):
            seen.add(key)
            spec = obj.get("spec") or {}
            phase = (obj.get("status") or {}).get("phase", "Pending")
            active = spec.get("active", True) and ClusterStatus.from_name(phase) <= ClusterStatus.RUNNING
            scheduler_pod, worker_pods = self.pods.of(key)
            target = max(spec.get("replicas", 0), self.granted.get(key, 0)) if active else 0
            if active or scheduler_pod or worker_pods:
                yield ClusterUsage(
                    key,
                    spec.get("username", ""),
                    spec.get("config") or {},
                    max(target, worker_pods),
                    active or scheduler_pod,
                    active,
                )
        now = time.monotonic()
        for key, (username, config, when) in list(self.reservations.items()):
            if key in seen or now - when > RESERVATION_SECONDS:
                self.reservations.pop(key, None)
                continue
            yield ClusterUsage(key, username, config, self.granted.get(key, 0))

    def _reserved(self, cluster_name: str, username: str, config: dict) -> None:
        if self.informer.get(cluster_name) is None:  # its event may have come first
            self.reservations[cluster_name] = (username, config, time.monotonic())

    def _granted(self, cluster_name: str, count: int) -> None:
        self.granted[cluster_name] = count

    def on_cluster_event(self, cluster: dict, old: dict | None = None) -> None:
        key = self.get_cluster_name(cluster)
        self.reservations.pop(key, None)  # the informer has it now (or saw it go)
        if self.informer.get(key) is None:
            self.granted.pop(key, None)
        super().on_cluster_event(cluster, old)


def kubernetes_options(gateway: DaskGatewayConfig, default_image: str) -> Options:
    image = String("image", default=default_image, label="Image (your server's, by default)")
    return Options(*size_fields(gateway), image, handler=kubernetes_options_handler)


def kubernetes_options_handler(options: Any, user: Any) -> dict[str, Any]:
    """Per cluster: sizes, the image, and the owner on every pod for the meter."""
    _, annotations = metering_metadata(user.name, "dask-scheduler")
    return {
        "worker_cores": options.worker_cores,
        "worker_cores_limit": options.worker_cores,
        "worker_memory": int(options.worker_memory * GIB),
        "worker_memory_limit": int(options.worker_memory * GIB),
        "image": options.image,
        "scheduler_extra_pod_annotations": annotations,
        "worker_extra_pod_annotations": annotations,
    }


#: What the dask-gateway chart's extraPodConfig values may decide for Dask pods: where they run.
PLACEMENT_KEYS = ("nodeSelector", "tolerations", "affinity")


def under_values(section: Any, trait: str, ours: dict) -> None:
    """``ours``, with the placement the dask-gateway chart's generated configuration already set
    from its values (gateway.backend.{scheduler,worker}.extraPodConfig) taking precedence: an
    admin's explicit choice, e.g. a single-node test cluster placing workers on its one node
    (examples/k3s.yaml). Only placement: anything else there (hostNetwork, a security context)
    is not taken, so no value can loosen how users' Dask pods are isolated."""
    earlier = section.get(trait, {})
    section[trait] = {**ours, **{key: earlier[key] for key in PLACEMENT_KEYS if key in earlier}}


def configure_kubernetes_gateway(c: Any, platform: PlatformConfig | None = None) -> None:
    """Everything from platform.yaml: mounted (PARHELION_CONFIG) or from the ConfigMap's text."""
    if platform is None:
        path, platform = platform_from_environment()
        c.AggregateLimitsMixin.platform_config_path = str(path)
        if not os.environ.get(PATH_VARIABLE):  # a copy of the ConfigMap's text, not a mount
            c.ParhelionKubeBackend.platform_configmap = os.environ.get(CONFIGMAP_VARIABLE, "")
    gateway = platform.dask_gateway
    c.DaskGateway.backend_class = ParhelionKubeBackend
    c.AggregateLimitsMixin.accounting_url = os.environ.get("PARHELION_ACCOUNTING_URL", "")
    c.AggregateLimitsMixin.accounting_token = os.environ.get("PARHELION_ACCOUNTING_TOKEN", "")
    c.Backend.cluster_options = kubernetes_options(gateway, platform.dask_image)
    # distributed (the images' pin) has no dask-scheduler / dask-worker scripts any more, only
    # the `dask` command: upstream's defaults would start pods whose command does not exist.
    # Only tokens of users allowed to use the gateway service (access:services!service=...),
    # not any hub token: upstream's JupyterHub auth accepts any token without a service name.
    c.JupyterHubAuthenticator.jupyterhub_service_name = GATEWAY_SERVICE
    c.KubeClusterConfig.scheduler_cmd = list(SCHEDULER_COMMAND)
    c.KubeClusterConfig.worker_cmd = list(WORKER_COMMAND)
    c.KubeClusterConfig.cluster_max_workers = gateway.max_workers_per_cluster
    c.KubeClusterConfig.idle_timeout = gateway.idle_timeout_minutes * 60
    scheduler_labels, _ = metering_metadata("", "dask-scheduler")
    worker_labels, _ = metering_metadata("", "dask-worker")
    c.KubeClusterConfig.scheduler_extra_pod_labels = scheduler_labels
    c.KubeClusterConfig.worker_extra_pod_labels = worker_labels
    under_values(
        c.KubeClusterConfig,
        "scheduler_extra_pod_config",
        {"nodeSelector": dict(USERS_POOL), "priorityClassName": "parhelion-users"},
    )
    under_values(
        c.KubeClusterConfig,
        "worker_extra_pod_config",
        {
            "nodeSelector": dict(DASK_WORKERS_POOL),
            "tolerations": [SPOT_TAINT],
            "priorityClassName": "parhelion-dask-workers",
        },
    )
    account = os.environ.get("PARHELION_USER_SERVICE_ACCOUNT")
    if account:  # the users' identity (on EKS, their IAM role), as their servers have
        c.KubeClusterConfig.scheduler_extra_pod_config["serviceAccountName"] = account
        c.KubeClusterConfig.worker_extra_pod_config["serviceAccountName"] = account
    c.KubeClusterConfig.scheduler_extra_container_config = {"securityContext": _unprivileged()}
    c.KubeClusterConfig.worker_extra_container_config = {"securityContext": _unprivileged()}


def _unprivileged() -> dict:
    return {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False}
