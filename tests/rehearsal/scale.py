"""The ``scale`` subresource: an ``autoscaling/v1`` Scale read from and written to its owner.

``kubectl scale`` and autoscalers write replicas through it without touching the rest of the
object; a CRD names the fields (``specReplicasPath``...), the built-ins use spec.replicas,
status.replicas and spec.selector.
"""

from __future__ import annotations

import copy

from tests.rehearsal.errors import ApiError
from tests.rehearsal.resources import ResourceType
from tests.rehearsal.selectors import label_selector_text


def _read(obj: dict, path: str):
    value = obj
    for part in path.strip(".").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _write(obj: dict, path: str, value) -> None:
    *parents, last = path.strip(".").split(".")
    for part in parents:
        obj = obj.setdefault(part, {})
    obj[last] = value


def scale_of(resource: ResourceType, obj: dict) -> dict:
    if resource.scale is None:
        raise ApiError(404, "NotFound", f"{resource.plural} have no scale subresource")
    paths, meta = resource.scale, obj["metadata"]
    if paths.label_selector:
        selector = _read(obj, paths.label_selector) or ""
    else:
        selector = label_selector_text((obj.get("spec") or {}).get("selector"))
    spec_replicas = _read(obj, paths.spec_replicas)
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": 1 if spec_replicas is None and not resource.custom else spec_replicas or 0},
        "status": {"replicas": _read(obj, paths.status_replicas) or 0, "selector": selector},
    }


def apply_scale(resource: ResourceType, obj: dict, scale: dict) -> dict:
    """The owner with the Scale's ``spec.replicas`` written where its kind keeps them."""
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise ApiError(422, "Invalid", f"Scale.spec.replicas: Invalid value: {replicas!r}")
    updated = copy.deepcopy(obj)
    _write(updated, resource.scale.spec_replicas, replicas)
    return updated
