# dask-gateway-server configuration for Parhelion. Thin on purpose: platform.yaml
# decides, platform_tools applies. `parhelion up` sets PARHELION_RUNTIME.
from platform_tools.gateway.local import configure_local_gateway

c = get_config()  # noqa: F821 - provided by dask-gateway-server
configure_local_gateway(c)
