"""The kinds the API stand-in serves: built-ins as a cluster has them, more from CRDs.

A resource type carries what routing, discovery and the store's semantics need: its group,
versions, kind, plural, scope and subresources (``status`` splits status writes from spec
writes, ``scale`` serves an ``autoscaling/v1`` Scale). Discovery documents come from the same
table, so the kubernetes client's DynamicClient (kubernetes.core) finds exactly what is served.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.rehearsal.errors import invalid

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class ScalePaths:
    """Where a scalable kind keeps its replicas (as a CRD's ``subresources.scale`` names them)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None  # a string field; None: the built-ins' spec.selector object


@dataclass
class ResourceType:
    group: str
    versions: list[str]
    kind: str
    plural: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    singular: str = ""
    categories: tuple[str, ...] = ()
    scale: ScalePaths | None = None
    custom: bool = False  # from a CRD: status dropped on create, no kind-specific defaults
    storage_key: tuple[str, str] = field(init=False)

    def __post_init__(self):
        self.singular = self.singular or self.kind.lower()
        self.storage_key = (self.group, self.plural)
        if "scale" in self.subresources and self.scale is None:
            self.scale = ScalePaths()

    def api_version(self, version: str | None = None) -> str:
        version = version or self.versions[0]
        return f"{self.group}/{version}" if self.group else version

    def resource_name(self) -> str:
        """``pods`` or ``daskclusters.gateway.dask.org``, as messages name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


# (group, version, kind, plural, namespaced, subresources, short names)
BUILT_INS = [
    ("", "v1", "Pod", "pods", True, ("status",), ("po",)),
    ("", "v1", "Service", "services", True, ("status",), ("svc",)),
    ("", "v1", "Endpoints", "endpoints", True, (), ("ep",)),
    ("", "v1", "Secret", "secrets", True, (), ()),
    ("", "v1", "ConfigMap", "configmaps", True, (), ("cm",)),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("status",), ("pvc",)),
    ("", "v1", "PersistentVolume", "persistentvolumes", False, ("status",), ("pv",)),
    ("", "v1", "Event", "events", True, (), ("ev",)),
    ("", "v1", "Namespace", "namespaces", False, ("status",), ("ns",)),
    ("", "v1", "Node", "nodes", False, ("status",), ("no",)),
    ("", "v1", "ServiceAccount", "serviceaccounts", True, (), ("sa",)),
    ("", "v1", "ResourceQuota", "resourcequotas", True, ("status",), ("quota",)),
    ("", "v1", "LimitRange", "limitranges", True, (), ("limits",)),
    ("apps", "v1", "Deployment", "deployments", True, ("status", "scale"), ("deploy",)),
    ("apps", "v1", "StatefulSet", "statefulsets", True, ("status", "scale"), ("sts",)),
    ("apps", "v1", "ReplicaSet", "replicasets", True, ("status", "scale"), ("rs",)),
    ("apps", "v1", "DaemonSet", "daemonsets", True, ("status",), ("ds",)),
    ("batch", "v1", "Job", "jobs", True, ("status",), ()),
    ("batch", "v1", "CronJob", "cronjobs", True, ("status",), ("cj",)),
    ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, (), ("netpol",)),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("status",), ("ing",)),
    ("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False, (), ()),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("status",), ("pdb",)),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", True, (), ()),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, (), ()),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, (), ()),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False, (), ()),
    ("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, (), ("pc",)),
    ("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, (), ("sc",)),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("status",), ("hpa",)),
    ("coordination.k8s.io", "v1", "Lease", "leases", True, (), ()),
    ("snapshot.storage.k8s.io", "v1", "VolumeSnapshot", "volumesnapshots", True, ("status",), ("vs",)),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("status",),
        ("crd", "crds"),
    ),
]


def built_in_types() -> list[ResourceType]:
    return [
        ResourceType(group, [version], kind, plural, namespaced, subresources, short_names)
        for group, version, kind, plural, namespaced, subresources, short_names in BUILT_INS
    ]


def types_from_crd(crd: dict) -> list[ResourceType]:
    """One type per served version of an ``apiextensions.k8s.io/v1`` CustomResourceDefinition."""
    spec = crd["spec"]
    names = spec["names"]
    found = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        declared = version.get("subresources") or {}
        scale = declared.get("scale")
        found.append(
            ResourceType(
                spec["group"],
                [version["name"]],
                names["kind"],
                names["plural"],
                spec.get("scope", "Namespaced") == "Namespaced",
                tuple(sub for sub in ("status", "scale") if sub in declared),
                tuple(names.get("shortNames") or ()),
                names.get("singular", ""),
                tuple(names.get("categories") or ()),
                ScalePaths(
                    scale["specReplicasPath"], scale["statusReplicasPath"], scale.get("labelSelectorPath")
                )
                if scale
                else None,
                custom=True,
            )
        )
    return found


# helm's install order (kinds it does not know go last, by kind name); CRDs go before all.
HELM_INSTALL_ORDER = [
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
]


def _helm_install_rank(obj: dict) -> tuple[int, str]:
    kind = obj.get("kind", "")
    if kind == "CustomResourceDefinition":  # helm installs a chart's crds/ before its templates
        return -2, ""
    if kind == "Namespace":
        return -1, ""
    if kind in HELM_INSTALL_ORDER:
        return HELM_INSTALL_ORDER.index(kind), ""
    return len(HELM_INSTALL_ORDER), kind


def _is_test_hook(manifest: dict) -> bool:
    hooks = ((manifest.get("metadata") or {}).get("annotations") or {}).get("helm.sh/hook", "")
    names = {h.strip() for h in hooks.split(",") if h.strip()}
    return bool(names) and names <= {"test", "test-success"}


def helm_install_sequence(manifests: list[dict | None]) -> list[dict]:
    """Rendered manifests in the order ``helm install`` creates them: CRDs, Namespaces, then
    helm's kind order (a stable sort); empty documents and test hooks left out."""
    return sorted((m for m in manifests if m and not _is_test_hook(m)), key=_helm_install_rank)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Status fields the Go types always serialize (no omitempty): clients reject a status without them.
_ZERO_STATUS = {
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "ReplicaSet": {"replicas": 0},
    "DaemonSet": {
        "currentNumberScheduled": 0,
        "desiredNumberScheduled": 0,
        "numberMisscheduled": 0,
        "numberReady": 0,
    },
    "HorizontalPodAutoscaler": {"currentReplicas": 0, "desiredReplicas": 0},
}


def default_service(spec: dict, next_cluster_ip: Callable[[], str]) -> None:
    """What the API server fills in a Service: its type, a cluster IP (unless headless or an
    ExternalName), each port's protocol and targetPort."""
    spec.setdefault("type", "ClusterIP")
    if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
        address = next_cluster_ip()
        spec["clusterIP"], spec["clusterIPs"] = address, [address]
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))


def initial_status(resource: ResourceType, obj: dict) -> None:
    """Status on create, per kind as the real strategies set it (a Node keeps its own)."""
    if "status" not in resource.subresources or resource.kind == "Node":
        return
    if resource.kind == "Pod":
        obj["status"] = {"phase": "Pending"}
    elif resource.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif resource.kind == "CustomResourceDefinition":
        conditions = [
            {"type": t, "status": "True", "reason": r, "lastTransitionTime": now(), "message": ""}
            for t, r in (("NamesAccepted", "NoConflicts"), ("Established", "InitialNamesAccepted"))
        ]
        obj["status"] = {
            "acceptedNames": obj["spec"]["names"],
            "conditions": conditions,
            "storedVersions": [],
        }
    elif resource.custom:
        obj.pop("status", None)
    else:
        obj["status"] = copy.deepcopy(_ZERO_STATUS.get(resource.kind, {}))


_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
DNS_LABEL = re.compile(rf"^{_LABEL}$")
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
PATH_SEGMENT_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def validate_name(kind: str, name: str) -> None:
    """The name rules the API server applies per kind (names a chart renders must pass them)."""
    if kind in PATH_SEGMENT_KINDS:
        ok = name not in (".", "..") and "/" not in name and "%" not in name
    elif kind == "Service":
        ok = len(name) <= 63 and bool(DNS_1035_LABEL.match(name))
    elif kind == "Namespace":
        ok = len(name) <= 63 and bool(DNS_LABEL.match(name))
    else:
        ok = len(name) <= 253 and bool(DNS_SUBDOMAIN.match(name))
    if not ok or not name:
        raise invalid(kind, name, f"metadata.name: Invalid value: {name!r}: not a valid {kind} name")


def validate_labels(kind: str, name: str, labels: dict | None) -> None:
    """Label keys and values as the API server checks them (63 characters, a limited alphabet)."""
    for key, value in (labels or {}).items():
        prefix, _, local = key.rpartition("/")
        key_ok = (
            len(local) <= 63
            and bool(_QUALIFIED.match(local))
            and (not prefix or (len(prefix) <= 253 and bool(DNS_SUBDOMAIN.match(prefix))))
        )
        value_ok = isinstance(value, str) and (
            value == "" or (len(value) <= 63 and bool(_QUALIFIED.match(value)))
        )
        if not key_ok or not value_ok:
            raise invalid(kind, name, f"metadata.labels: Invalid value: {key!r}: {value!r}")
