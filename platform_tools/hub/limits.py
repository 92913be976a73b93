"""How the hub enforces a server's CPU and memory limits: systemd units, cgroups, or not at all.

`parhelion up` decides once (``local.cgroups.enforcement``, in runtime.json ``limits``):

* ``systemd`` (PID 1 is systemd, ``systemd-run`` works, each user has their own account): each
  server is a transient systemd unit started by jupyterhub-systemdspawner, as The Littlest
  JupyterHub does: ``MemoryMax`` and ``CPUQuota`` from the profile (the spawner's
  ``mem_limit`` and ``cpu_limit``, set by ``before_spawn``), no swap beyond it, a private
  ``/tmp`` and ``/dev``, no privilege gain (sudo, setuid programs); stopping the unit kills
  every process of it. Unit names carry the platform's hash (two platforms do not mix) and the
  server's name (named servers do not share a unit).
* ``cgroup-v2`` / ``cgroup-v1``: the grouped local spawners (hub/spawners.py) write the
  limits into the server's cgroups.
* ``none``: servers run unlimited; the hub's log says so at each start, as `parhelion up` does.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from systemdspawner import SystemdSpawner

from platform_tools.local.cgroups import unenforced_warning


class ParhelionSystemdSpawner(SystemdSpawner):
    """SystemdSpawner with one unit per server (named servers included)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.name:
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)[:60]
            self.unit_name = f"{self.unit_name}-{safe}"


def configure_systemd_spawner(c: Any, base: str) -> None:
    """The spawner and its traits: limits come from the profile at each spawn."""
    c.JupyterHub.spawner_class = ParhelionSystemdSpawner
    c.SystemdSpawner.unit_name_template = f"{base}-{{USERNAME}}"
    c.SystemdSpawner.isolate_tmp = True
    c.SystemdSpawner.isolate_devices = True
    c.SystemdSpawner.disable_user_sudo = True
    c.SystemdSpawner.unit_extra_properties = {"MemorySwapMax": "0"}


def configure_limits(c: Any, limits: dict[str, str], base: str) -> None:
    """systemd units when `parhelion up` chose them; a warning in the hub log when nothing
    limits the servers (the grouped spawner stays, and stops a server whole)."""
    if limits.get("servers") == "systemd":
        configure_systemd_spawner(c, base)
    warning = unenforced_warning(limits)
    if warning:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"[W {stamp} parhelion] {warning}", file=sys.stderr, flush=True)
