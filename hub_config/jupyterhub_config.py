# JupyterHub configuration for Parhelion. Thin on purpose: everything is decided by
# platform.yaml and applied by platform_tools, the same code for every deployment.
# Locally `parhelion up` starts the hub with this file (and sets PARHELION_RUNTIME); on
# Kubernetes the hub image runs it after zero-to-jupyterhub's own configuration
# (PARHELION_BACKEND=kubernetes, PARHELION_CONFIG=the mounted platform.yaml).
import os

c = get_config()  # noqa: F821 - provided by JupyterHub
if os.environ.get("PARHELION_BACKEND") == "kubernetes":
    from platform_tools.hub.kubernetes import configure_kubernetes_hub

    configure_kubernetes_hub(c)
else:
    from platform_tools.hub.local import configure_local_hub

    configure_local_hub(c)
