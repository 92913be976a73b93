"""What hub_config/jupyterhub_config.py calls: JupyterHub configured from platform.yaml."""
