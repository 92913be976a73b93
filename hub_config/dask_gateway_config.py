# dask-gateway-server configuration for Parhelion. Thin on purpose: platform.yaml
# decides, platform_tools applies. Locally `parhelion up` sets PARHELION_RUNTIME; on
# Kubernetes the gateway API server runs the hub image with PARHELION_BACKEND=kubernetes and
# platform.yaml from its ConfigMap; the chart's gateway.extraConfig loads this file.
# `c` comes from the loader's namespace (traitlets, through the chart's load_subconfig), as in
# hub_config/jupyterhub_config.py.
import os

if os.environ.get("PARHELION_BACKEND") == "kubernetes":
    from platform_tools.gateway.kubernetes import configure_kubernetes_gateway

    configure_kubernetes_gateway(c)  # noqa: F821 - provided by the loader
else:
    from platform_tools.gateway.local import configure_local_gateway

    configure_local_gateway(c)  # noqa: F821
