# JupyterHub configuration for Parhelion. Thin on purpose: everything is decided by
# platform.yaml and applied by platform_tools, the same code for every deployment.
# Locally `parhelion up` starts the hub with this file (and sets PARHELION_RUNTIME); on
# Kubernetes the hub image runs it after zero-to-jupyterhub's own configuration
# (PARHELION_BACKEND=kubernetes, PARHELION_CONFIG=the mounted platform.yaml).
#
# `c` is not made here with get_config(): JupyterHub's loader (traitlets) puts `c` in this file's
# namespace, and zero-to-jupyterhub execs this file in ITS namespace, where `c` exists too but
# `get_config` is z2jh.get_config(key), which takes a key (calling it bare crashed the hub).
import os

if os.environ.get("PARHELION_BACKEND") == "kubernetes":
    from platform_tools.hub.kubernetes import configure_kubernetes_hub

    configure_kubernetes_hub(c)  # noqa: F821 - provided by the loader (see above)
else:
    from platform_tools.hub.local import configure_local_hub

    configure_local_hub(c)  # noqa: F821
