"""dask-gateway on Kubernetes, configured from platform.yaml.

The same decisions as the local gateway, with the kubernetes backend: cluster options
bounded by platform.yaml, the per-user aggregate limits (the user's clusters summed, as
locally), schedulers on the users pool and workers on the spot "dask-workers" pool (they
tolerate its taint; nothing else does), the image of the user's notebook server (the
client sends it) or the platform's Dask image, an idle timeout, and the labels and
annotations the meter charges pods by.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dask_gateway_server.backends.kubernetes import KubeBackend
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
from platform_tools.gateway.limits import AggregateLimitsMixin
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


class ParhelionKubeBackend(AggregateLimitsMixin, KubeBackend):
    """The kubernetes backend with Parhelion's aggregate limits.

    Clusters live in DaskCluster objects; the backend's informer has each one's replicas
    (the target worker count), which is what the limits count. When platform.yaml is not
    mounted (the dask-gateway chart has no extra volumes), the backend follows its
    ConfigMap, so quota and budget changes apply with no restart, as on the hub.
    """

    platform_configmap = Unicode(
        "", config=True, help="The ConfigMap (this namespace) to follow platform.yaml from; empty: none."
    )
    platform_refresh_seconds = Float(30.0, config=True, help="How often the ConfigMap is read.")

    _mirror_task: asyncio.Task | None = None

    async def setup(self, app: Any) -> None:
        await super().setup(app)
        if self.platform_configmap:
            # the namespace is a cluster option upstream (KubeClusterConfig), not the backend's:
            # the gateway's own, from its service account, unless configured otherwise
            namespace = self.cluster_config_class(parent=self).namespace
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
        await super().cleanup()

    def _record(self, cluster: Any) -> SimpleNamespace:
        obj = self.informer.get(cluster.name) or {}
        replicas = (obj.get("spec") or {}).get("replicas", 0)
        return SimpleNamespace(
            name=cluster.name, username=cluster.username, config=cluster.config, count=replicas
        )

    def _active_clusters(self) -> list[Any]:
        return [self._record(c) for c in self.clusters.values() if c.status <= ClusterStatus.RUNNING]

    def _live_cluster(self, cluster_name: str) -> Any | None:
        cluster = self.clusters.get(cluster_name)
        return (
            self._record(cluster) if cluster is not None and cluster.status <= ClusterStatus.RUNNING else None
        )


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
