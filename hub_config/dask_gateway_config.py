# dask-gateway-server configuration for Parhelion. Thin on purpose: platform.yaml
# decides, platform_tools applies. Locally `parhelion up` sets PARHELION_RUNTIME; on
# Kubernetes the gateway API server runs the hub image with PARHELION_BACKEND=kubernetes and
# platform.yaml from its ConfigMap; the chart's gateway.extraConfig loads this file.
import os

c = get_config()  # noqa: F821 - provided by dask-gateway-server
if os.environ.get("PARHELION_BACKEND") == "kubernetes":
    from platform_tools.gateway.kubernetes import configure_kubernetes_gateway

    configure_kubernetes_gateway(c)
else:
    from platform_tools.gateway.local import configure_local_gateway

    configure_local_gateway(c)
