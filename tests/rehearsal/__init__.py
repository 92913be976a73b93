"""The EKS rehearsal: the rendered chart's processes serving a user on one machine.

No kube-apiserver, kubelet or container runtime runs here. The rehearsal stands in for those
three alone, each named as a stand-in (the control plane in ``apiserver``/``controllers``, the
node in ``kubelet``/``network``), and runs everything else (JupyterHub with zero-to-jupyterhub's
configuration, configurable-http-proxy, dask-gateway's API server and controller, Parhelion's
accounting service, the Dask scheduler and workers) as the rendered chart starts it.
"""
