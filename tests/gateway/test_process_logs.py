"""Where the gateway writes a Dask process's output: in the cluster's own ``logs`` folder only.

In system-users mode the working directory and its ``logs`` are the student's while the
gateway (root) opens each new worker's log in it: a ``logs`` replaced with a link must not
send root's file elsewhere. A real process is started through the backend's own start; only
the cgroup (``ServerGroup`` without one) and the switch of account are left out.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from platform_tools.gateway.groups import ProcessGroupsMixin
from platform_tools.local.servergroup import ServerGroup


class Backend(ProcessGroupsMixin):
    """dask-gateway's LocalBackend layout (``<workdir>/logs``), as root would run it."""

    def _process_group(self, cluster, name, limited=False):
        return ServerGroup(f"test/{cluster.name}/{name}", None)

    def get_logs_directory(self, workdir):
        return os.path.join(workdir, "logs")

    def make_preexec_fn(self, cluster):
        return lambda: None


def _cluster(tmp_path: Path) -> SimpleNamespace:
    workdir = tmp_path / "clusters" / "abc123"
    (workdir / "logs").mkdir(parents=True)
    return SimpleNamespace(name="abc123", state={"workdir": str(workdir)}, config={})


def _wait_for_text(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    return path.read_text() if path.exists() else ""


def test_a_process_output_goes_to_its_log_in_the_clusters_folder(tmp_path):
    cluster = _cluster(tmp_path)
    asyncio.run(Backend().start_process(cluster, ["echo", "hello"], dict(os.environ), "worker-1"))
    log = Path(cluster.state["workdir"]) / "logs" / "worker-1.log"
    assert _wait_for_text(log) == "hello\n"
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_logs_folder_swapped_for_a_link_makes_no_file_where_it_points(tmp_path):
    """The student's move: ``mv logs logs.old; ln -s /etc logs``, then ``cluster.scale(1)``."""
    cluster = _cluster(tmp_path)
    workdir = Path(cluster.state["workdir"])
    victim = tmp_path / "etc"
    victim.mkdir()
    (workdir / "logs").rename(workdir / "logs.old")
    (workdir / "logs").symlink_to(victim)
    with pytest.raises(OSError):
        asyncio.run(Backend().start_process(cluster, ["echo", "hello"], dict(os.environ), "worker-2"))
    assert list(victim.iterdir()) == []
    assert list((workdir / "logs.old").iterdir()) == []


def test_a_link_left_at_the_log_name_is_not_followed(tmp_path):
    cluster = _cluster(tmp_path)
    victim = tmp_path / "shadow"
    (Path(cluster.state["workdir"]) / "logs" / "worker-3.log").symlink_to(victim)
    with pytest.raises(OSError):
        asyncio.run(Backend().start_process(cluster, ["echo", "hello"], dict(os.environ), "worker-3"))
    assert not victim.exists()
