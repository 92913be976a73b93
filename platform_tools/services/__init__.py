"""The running processes, assembled: Parhelion's process-wiring layer.

* ``supervisor`` — `parhelion up` and `parhelion down`: checks, ports, secrets, then the
  local services started in order and watched until the end;
* ``local`` — how each local service is started and how its readiness is seen;
* ``processes`` — starting, watching and stopping processes with no orphan left;
* ``status`` — `parhelion status`;
* ``accounting`` — the accounting service (its web app, handlers, and the factory that
  assembles it from a ``Sources`` for either backend).

The hub's and the gateway's configuration (``platform_tools.hub``, ``platform_tools.gateway``)
sit on this layer too; only ``platform_tools.cli`` is above it.
"""
