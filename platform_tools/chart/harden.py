"""Post-rendering: the security settings upstream charts offer no value for.

The dask-gateway chart (2026.3.0) has no values for the pod or container securityContext of
its API server and controller, and gives traefik only a user id. Parhelion requires every pod
to run as a non-root user, without privilege escalation, with no capabilities and the
runtime's default seccomp profile (the chart tier checks it for every container). This
post-renderer adds those settings where a pod template lacks them, and changes nothing a
chart set itself. Likewise every container must be bounded: zero-to-jupyterhub's autohttps
pod has no value for the resources of its ``load-acme`` init container, which runs the same
image as its bounded ``secret-sync`` sidecar, so an init container with no resources gets
those of the pod's container running its image.

Helm runs it as the ``parhelion-harden`` plugin (helm/plugins), on every ``helm template``
and ``helm upgrade --install`` Parhelion makes (tests and Ansible alike):

    helm plugin install helm/plugins/parhelion-harden
    helm upgrade --install parhelion helm/parhelion --post-renderer parhelion-harden

Reads the manifests on stdin, writes them to stdout (``python -m platform_tools.chart.harden``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import yaml

POD_TEMPLATES = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
UNPRIVILEGED_USER = 1000  # the images' jovyan; upstream images that need another set their own

POD_DEFAULTS = {
    "runAsNonRoot": True,
    "runAsUser": UNPRIVILEGED_USER,
    "runAsGroup": UNPRIVILEGED_USER,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_DEFAULTS = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _fill(target: dict, defaults: dict) -> None:
    """Each default key that ``target`` does not set (nested dicts filled the same way)."""
    for key, value in defaults.items():
        if key not in target:
            target[key] = value if not isinstance(value, dict) else dict(value)
        elif isinstance(value, dict) and isinstance(target[key], dict):
            _fill(target[key], value)


def _pod_spec(obj: dict) -> dict | None:
    if obj.get("kind") == "Pod":
        return obj.get("spec")
    if obj.get("kind") in POD_TEMPLATES:
        return (obj.get("spec") or {}).get("template", {}).get("spec")
    if obj.get("kind") == "CronJob":
        return (obj.get("spec") or {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    return None


def harden(obj: dict) -> dict:
    """``obj`` with the pod and container settings above where it has a pod template."""
    spec = _pod_spec(obj)
    if spec is None:
        return obj
    pod = spec.setdefault("securityContext", {})
    if pod.get("runAsUser") == 0 or pod.get("runAsNonRoot") is False:
        return obj  # a chart that runs a pod as root on purpose is left to its checks
    _fill(pod, POD_DEFAULTS)
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        context = container.setdefault("securityContext", {})
        if context.get("privileged") or context.get("runAsUser") == 0:
            continue
        _fill(context, CONTAINER_DEFAULTS)
    _bound_init_containers(spec)
    return obj


def _bound_init_containers(spec: dict) -> None:
    """Init containers without resources take those of a container running the same image."""
    bounded = {c.get("image"): c["resources"] for c in spec.get("containers", []) if c.get("resources")}
    for init in spec.get("initContainers", []):
        if not init.get("resources") and init.get("image") in bounded:
            init["resources"] = yaml.safe_load(yaml.safe_dump(bounded[init["image"]]))


def harden_stream(documents: Iterable[dict | None]) -> list[dict]:
    return [harden(doc) for doc in documents if doc]


def main() -> int:
    documents = harden_stream(yaml.safe_load_all(sys.stdin))
    yaml.safe_dump_all(documents, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
