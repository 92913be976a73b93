"""The metadata that marks what the meter charges, and for whom (Kubernetes).

The hub (KubeSpawner ``extra_labels``/``extra_annotations``) and dask-gateway's kubernetes
backend (``scheduler_extra_pod_*``/``worker_extra_pod_*``) put it on every pod and claim they
make; the accounting service's Kubernetes source selects by it; `parhelion class close
--kubernetes` finds students' home claims by it:

* label ``parhelion.dev/metered: "true"`` — selects the pods and claims to meter;
* annotation ``parhelion.dev/user`` — the hub username (annotations allow any name; label
  values do not allow ``@``);
* label ``parhelion.dev/kind`` — one of ``KINDS``.
"""

from __future__ import annotations

METERED = "parhelion.dev/metered"
USER = "parhelion.dev/user"
KIND = "parhelion.dev/kind"
PROFILE = "parhelion.dev/profile"
SELECTOR = f"{METERED}=true"
KINDS = ("server", "dask-scheduler", "dask-worker", "home")

POOL = "parhelion.dev/pool"
USERS_POOL = {POOL: "users"}
DASK_WORKERS_POOL = {POOL: "dask-workers"}


def metering_metadata(username: str, kind: str) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) that get a pod or claim metered for ``username`` as ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown metered kind {kind!r} (one of {', '.join(KINDS)})")
    return {METERED: "true", KIND: kind}, {USER: username}
