"""Each local Dask process in a group of its own: limited to its size, stopped whole.

dask-gateway's local backend starts the scheduler and each worker as a process and stops it
by its pid: a worker runs with no CPU or memory limit (one task can take the machine's
memory), and a ``nohup`` job a task started outlives its cluster. Here each process joins a
``ServerGroup`` before it runs (``<dask base>/<cluster>/scheduler`` or ``.../worker-<name>``),
limited like a pod:

* a worker to the cluster's ``worker_memory`` and ``worker_cores`` (the options the user
  chose, what the quota and the meter count): over its memory the kernel kills that worker's
  largest process, never another worker or another user's;
* the scheduler to ``scheduler_memory`` and ``scheduler_cores``, also counted by the quota and
  the meter: limited so, a scheduler that runs away is bounded by what the user is charged for.

After the backend's own stop of a process (SIGINT, SIGTERM, SIGKILL to its pid) everything
left in its group is killed and the group removed; a cluster's stop does so for every group
of the cluster (workers the gateway no longer lists included), then removes its folder.
Without a cgroup, the fallback of ``ServerGroup`` applies (tree, sessions, marker).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from platform_tools.local.cgroups import Limits
from platform_tools.local.servergroup import ServerGroup, usable_cgroup_root

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def open_log(workdir: str, logs: str, name: str) -> int:
    """A new log file ``workdir/logs/name.log`` for a Dask process's output, opened by the
    gateway (root in system-users) in a folder its user owns and may change meanwhile.

    By path, a ``logs`` the user replaced with a link to ``/etc`` (then ``cluster.scale(1)``)
    had root create ``/etc/worker-<name>.log`` holding the worker's output, which the user
    writes. So each step is opened without following links: a link there refuses the start.
    """
    if os.sep in logs or logs in (os.curdir, os.pardir):
        raise ValueError(f"the logs folder must be a folder of the working directory, not {logs!r}")
    top = os.open(workdir, _FOLDER)  # in the gateway's clusters folder: the user's by then
    try:
        folder = os.open(logs, _FOLDER, dir_fd=top)
    finally:
        os.close(top)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        return os.open(f"{name}.log", flags, 0o600, dir_fd=folder)
    finally:
        os.close(folder)


class ProcessGroupsMixin(LoggingConfigurable):
    """For dask-gateway's ``LocalBackend`` and its subclasses (mixed in before them)."""

    dask_group_base = Unicode(
        "parhelion-dask", config=True, help="The cgroup folder of this platform's Dask clusters."
    )

    def _process_group(self, cluster: Any, name: str, limited: bool = False) -> ServerGroup:
        limits = None
        if limited:
            config = cluster.config
            kind = "scheduler" if name == "scheduler" else "worker"
            limits = Limits(config[f"{kind}_memory"], config[f"{kind}_cores"])
        return ServerGroup.make(f"{self.dask_group_base}/{cluster.name}/{name}", limits=limits)

    async def start_process(self, cluster: Any, cmd: list[str], env: dict, name: str) -> int:
        """Upstream's start, with the group joined before the switch to the user's account."""
        group = await asyncio.to_thread(self._process_group, cluster, name, True)
        if group.enforced:
            self.log.info("Limits of %s %s: %s", cluster.name, name, ", ".join(group.enforced))
        workdir = cluster.state["workdir"]
        fd = open_log(workdir, os.path.relpath(self.get_logs_directory(workdir), workdir), name)
        switch_user = self.make_preexec_fn(cluster)

        def preexec() -> None:
            group.join()
            switch_user()

        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                preexec_fn=preexec,
                start_new_session=True,
                env={**env, **group.environment()},
                stdout=fd,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            os.close(fd)
        return proc.pid

    async def _stop_group(self, cluster: Any, name: str, pid: int | None, stop_pid) -> None:
        group = await asyncio.to_thread(self._process_group, cluster, name)
        known: set[int] = set()
        if group.cgroup is None and pid:  # the tree, before the stop orphans it
            known = await asyncio.to_thread(group.related, pid)
        await stop_pid()
        left = await asyncio.to_thread(group.stop, known)
        if left:
            self.log.info("Stopped %d more process(es) of %s %s", len(left), cluster.name, name)

    async def do_stop_worker(self, worker: Any) -> None:
        await self._stop_group(
            worker.cluster,
            f"worker-{worker.name}",
            worker.state.get("pid"),
            lambda: super(ProcessGroupsMixin, self).do_stop_worker(worker),
        )

    async def do_stop_cluster(self, cluster: Any) -> None:
        await self._stop_group(
            cluster,
            "scheduler",
            cluster.state.get("pid"),
            lambda: super(ProcessGroupsMixin, self).do_stop_cluster(cluster),
        )
        names = {f"worker-{name}" for name in cluster.workers}
        root = await asyncio.to_thread(usable_cgroup_root)
        folder = root / self.dask_group_base / cluster.name if root is not None else None
        if folder is not None and folder.is_dir():
            names |= {child.name for child in folder.iterdir() if child.is_dir()}
        for name in sorted(names):
            group = await asyncio.to_thread(self._process_group, cluster, name)
            await asyncio.to_thread(group.stop)
