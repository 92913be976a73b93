"""The local spawners: JupyterHub's, but a stop stops every process of the server.

JupyterHub's ``LocalProcessSpawner`` signals the server's pid only; a ``nohup`` job or a
``setsid`` daemon a user started from a terminal or kernel outlives the stop, and with it the
budget cap that asked for the stop. These spawners put each server in its own
``local.servergroup.ServerGroup`` (a cgroup where the machine allows one, limited to the
profile's ``cpu_limit`` and ``mem_limit_gib`` that ``before_spawn`` set) and, after the
usual graceful stop of the server (SIGINT, SIGTERM, SIGKILL to its pid, so that it shuts its
kernels down cleanly), stop whatever is left of the group and remove its cgroup.

``poll()`` is JupyterHub's: the server is stopped when its main process has exited, even if
other processes of its group still run. JupyterHub then calls ``stop()``, which kills them:
whether the server exits by itself, is culled, stopped by its user or by the enforcer, nothing
of it survives. The group is named from the platform, user and server name (not stored
state), so a restarted hub still finds it.
"""

from __future__ import annotations

import asyncio
import pwd

from jupyterhub.spawner import LocalProcessSpawner, SimpleLocalProcessSpawner
from traitlets import Unicode

from platform_tools.local.cgroups import Limits
from platform_tools.local.servergroup import ServerGroup, server_id


class GroupedLocalProcessSpawner(LocalProcessSpawner):
    """``system-users``: servers as the users' own accounts; the group joined at start, emptied
    at stop. Without a cgroup, the stop also takes every process of the account that no other
    server of the user claims."""

    group_base = Unicode(
        "parhelion-servers", config=True, help="The cgroup folder of this platform's servers."
    )

    def _group(self, limited: bool = False) -> ServerGroup:
        """The server's group; ``limited``: with the profile's CPU and memory limits (at start;
        a stop only needs to find it)."""
        limits = Limits(self.mem_limit or None, self.cpu_limit or None) if limited else None
        return ServerGroup.make(
            server_id(self.group_base, self.user.name, self.name), self._group_uid(), limits=limits
        )

    def _group_uid(self) -> int | None:
        try:
            return pwd.getpwnam(self.user.name).pw_uid
        except KeyError:
            return None

    def get_env(self):
        env = super().get_env()
        env.update(ServerGroup(server_id(self.group_base, self.user.name, self.name), None).environment())
        return env

    def make_preexec_fn(self, name):
        switch_user = super().make_preexec_fn(name)
        group = self._group(limited=True)  # made here, in the hub; joined in the child before it runs
        if group.enforced:
            limits = ", ".join(group.enforced)
            self.log.info("Limits of %s's server %r: %s", self.user.name, self.name, limits)

        def preexec() -> None:
            group.join()
            switch_user()

        return preexec

    async def stop(self, now=False):
        # /proc is read and processes waited for off the hub's event loop
        group = await asyncio.to_thread(self._group)
        known: set[int] = set()
        if group.cgroup is None and self.pid:  # the tree, before it is orphaned by the stop
            known = await asyncio.to_thread(group.related, self.pid)
        await super().stop(now=now)
        left = await asyncio.to_thread(group.stop, known)
        if left:
            self.log.info(
                "Stopped %d more process(es) of %s's server %r", len(left), self.user.name, self.name
            )


class GroupedSimpleSpawner(GroupedLocalProcessSpawner, SimpleLocalProcessSpawner):
    """``simple``: every server as the platform's own account (one person, or tests)."""

    def _group_uid(self) -> int | None:
        return None  # the platform's own account: never all of its processes
