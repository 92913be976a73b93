"""Clients of the platform's APIs, each behind one small class.

``hubclient`` drives a JupyterHub as a person in a browser does (login form, spawn, a
kernel); ``hubadmin`` is the hub's REST API as an admin service uses it; ``kubernetes`` is
the one place a Kubernetes API client is configured (in-cluster, a kubeconfig, or a given
configuration); ``spend`` asks the accounting service, from a kernel, what is left of its
user's budget. Libraries: they import only ``config`` and ``contract``.
"""
