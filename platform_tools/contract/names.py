"""Names of the chart's objects, derived from the Helm release as the chart derives them.

The chart's ``parhelion.fullname`` helper (helm/parhelion/templates/_helpers.tpl) is the
release name when it already contains the chart's name, else ``<release>-parhelion``,
truncated to 63 characters. The CLI finds the chart's ConfigMap and StatefulSet through the
same rule, so a release called anything works; a chart test renders a release not called
``parhelion`` and checks these names against the manifests.
"""

from __future__ import annotations

CHART = "parhelion"
CONFIGMAP_KEY = "platform.yaml"  # the key of platform.yaml in the platform ConfigMap


def fullname(release: str) -> str:
    name = release if CHART in release else f"{release}-{CHART}"
    return name[:63].rstrip("-")


def platform_configmap(release: str) -> str:
    """The ConfigMap that holds platform.yaml (key ``CONFIGMAP_KEY``)."""
    return f"{fullname(release)}-platform"


def placeholder_statefulset(release: str) -> str:
    """The StatefulSet of placeholder pods that prewarm a class's nodes."""
    return f"{fullname(release)}-placeholder"


def accounting_service(release: str) -> str:
    """The accounting service's Service (port ``ACCOUNTING_PORT``)."""
    return f"{fullname(release)}-accounting"


ACCOUNTING_PORT = 8080


def gateway_fullname(release: str) -> str:
    """The dask-gateway chart's fullname for a release (its own helper's rule)."""
    name = release if "dask-gateway" in release else f"{release}-dask-gateway"
    return name[:63].rstrip("-")


def gateway_traefik(release: str) -> str:
    """The dask-gateway chart's traefik Service: the gateway's proxy (HTTP on port 80)."""
    return f"traefik-{gateway_fullname(release)}"[:63].rstrip("-")


def release_of(environ) -> str:
    """The release a hub pod belongs to: zero-to-jupyterhub gives the hub HELM_RELEASE_NAME."""
    return environ.get("HELM_RELEASE_NAME") or CHART
