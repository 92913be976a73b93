"""The accounting service: a JupyterHub service that meters, records and enforces.

Runs as a hub service (managed by the hub locally; its own Deployment on Kubernetes):
``python -m platform_tools.services.accounting [--kubernetes]``.

* ``factory`` — settings from the local runtime or from the pod's environment, and the one
  factory that assembles the service from them and a ``Sources`` of either backend;
* ``app`` — the service object, its loops (meter, enforcer, class sessions) and web server;
* ``handlers`` — the HTTP routes (paths from ``platform_tools.contract``);
* ``actions`` — what the enforcer and the class sessions do to the world: stop servers
  through the hub, clusters through the gateway, scale the chart's placeholders.
"""
