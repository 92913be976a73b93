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


def proxy_origin(proxy: dict) -> str:
    """Where pods inside the cluster reach the hub's proxy (zero-to-jupyterhub's ``proxy`` values).

    Users' servers reach dask-gateway and the accounting service through it, as daskhub's
    do. ``http://proxy-public`` is right only without HTTPS: the chart requires HTTPS, and
    each of zero-to-jupyterhub's ways of serving it changes the in-cluster path (its
    service and proxy templates, and the users' NetworkPolicy, which lets servers reach the
    proxy pod on port 8000 only):

    * ``offload`` (TLS ended at the load balancer, the chart's default): the Service's port
      443 carries plain HTTP to the proxy; its port 80 may be disabled (``disableHttpPort``);
    * ``letsencrypt``: ``proxy-public`` is traefik, which redirects HTTP to HTTPS (a POST
      would come back as a GET); ``proxy-http`` is the proxy's own plain port;
    * ``manual`` and ``secret``: the proxy itself serves TLS, for its public name, and its
      HTTP port only redirects: servers go out by the public name, as a browser does.
    """
    https = proxy.get("https") or {}
    kind = https.get("type") or "letsencrypt"
    hosts = https.get("hosts") or []
    if not https.get("enabled"):
        return "http://proxy-public"
    if kind == "offload":
        return "http://proxy-public:443"
    if kind == "letsencrypt":  # without hosts zero-to-jupyterhub serves plain HTTP
        return "http://proxy-http:8000" if hosts else "http://proxy-public"
    if kind in ("manual", "secret"):
        if not hosts:
            raise ValueError(
                f"jupyterhub.proxy.https.type is {kind!r} but proxy.https.hosts is empty: users' "
                "servers reach the hub's proxy by its public name"
            )
        return f"https://{hosts[0]}"
    raise ValueError(f"jupyterhub.proxy.https.type {kind!r} is not one of zero-to-jupyterhub's")
