"""Kubernetes quantities and pod requests, as numbers (the meter's and capacity's parsing)."""

from __future__ import annotations

import re
from datetime import datetime

_SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_QUANTITY = re.compile(r"^([0-9.]+(?:[eE][-+]?[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


def quantity(text: str | int | float) -> float:
    """A Kubernetes resource quantity as a number: '500m' -> 0.5, '2Gi' -> 2147483648."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2) or ""]


def pod_requests(pod: dict) -> tuple[float, float]:
    """(cpu cores, memory GiB) the pod requests, summed over its containers."""
    cpu = memory = 0.0
    for container in pod["spec"].get("containers", []):
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += quantity(requests.get("cpu", 0))
        memory += quantity(requests.get("memory", 0)) / 2**30
    return cpu, memory


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
