"""What hub_config/dask_gateway_config.py calls: dask-gateway configured from platform.yaml."""
