# JupyterHub configuration for Parhelion. Thin on purpose: everything is decided by
# platform.yaml and applied by platform_tools, the same code for every deployment.
# `parhelion up` starts the hub with this file and sets PARHELION_RUNTIME.
from platform_tools.hub.local import configure_local_hub

c = get_config()  # noqa: F821 - provided by JupyterHub
configure_local_hub(c)
