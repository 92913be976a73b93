"""What enforces CPU and memory limits on a machine, decided from what it has, and what is written.

The detection reads cgroup mounts and PID 1; here it is given fake cgroup roots in temp folders
(a pure v2 machine with systemd, a hybrid v1 one like this CI's, a machine with neither), since
one machine has only one of them. The limit files are written into fake group folders the same
way; the real kernel's enforcement is tested in tests/hub/test_local_resource_limits.py. The
systemd spawner is configured and built here but not run: this CI has no systemd as PID 1.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from platform_tools.hub.limits import ParhelionSystemdSpawner, configure_limits
from platform_tools.local.cgroups import (
    Limits,
    apply_limits,
    cgroup_kind,
    enforcement,
    limit_roots,
    remove_platform_groups,
    systemd_runs,
    unenforced_warning,
)
from platform_tools.local.servergroup import ServerGroup

pytestmark = pytest.mark.unit
GIB = 2**30


def v2_machine(fs: Path) -> Path:
    """cgroup2 at /sys/fs/cgroup with the controllers systemd enables."""
    fs.mkdir(parents=True, exist_ok=True)
    for name in ("cgroup.procs", "cgroup.subtree_control", "memory.max", "cpu.max"):
        (fs / name).write_text("")
    (fs / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    return fs


V1_FILES = {
    "memory": ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
    "cpu": ["cpu.cfs_quota_us", "cpu.cfs_period_us"],
    "cpuacct": ["cpuacct.usage"],
    "pids": [],
}


def v1_machine(fs: Path) -> Path:
    """Debian's hybrid layout: v1 controllers, and a unified mount that holds none of them."""
    for controller, files in V1_FILES.items():
        (fs / controller).mkdir(parents=True)
        for name in ["cgroup.procs", *files]:
            (fs / controller / name).write_text("")
    (fs / "unified").mkdir()
    (fs / "unified" / "cgroup.procs").write_text("")
    (fs / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    return fs


def fake_proc(root: Path, pid1: str) -> Path:
    (root / "1").mkdir(parents=True)
    (root / "1" / "comm").write_text(pid1 + "\n")
    return root


def test_each_layout_is_told_apart(tmp_path):
    assert cgroup_kind(v2_machine(tmp_path / "v2")) == "cgroup-v2"
    assert limit_roots(tmp_path / "v2") == [tmp_path / "v2"]
    assert cgroup_kind(v1_machine(tmp_path / "v1")) == "cgroup-v1"
    assert limit_roots(tmp_path / "v1") == [tmp_path / "v1" / c for c in ("memory", "cpu", "cpuacct")]
    (tmp_path / "none").mkdir()
    assert cgroup_kind(tmp_path / "none") == "none"
    assert limit_roots(tmp_path / "none") == []


def test_systemd_is_used_when_pid_1_is_systemd_and_systemd_run_is_there_as_root(tmp_path):
    booted = tmp_path / "run-systemd-system"
    booted.mkdir()
    systemd = fake_proc(tmp_path / "a", "systemd")
    assert systemd_runs(systemd, booted, systemd_run="/usr/bin/systemd-run", euid=0)
    assert not systemd_runs(fake_proc(tmp_path / "b", "tini"), booted, "/usr/bin/systemd-run", 0)
    assert not systemd_runs(systemd, tmp_path / "not-booted", "/usr/bin/systemd-run", 0)
    assert not systemd_runs(systemd, booted, systemd_run="", euid=0)
    assert not systemd_runs(systemd, booted, "/usr/bin/systemd-run", euid=1000)


def test_servers_use_systemd_only_with_accounts_of_their_own_and_workers_use_cgroups(tmp_path):
    v2 = v2_machine(tmp_path / "v2")
    assert enforcement(True, v2, systemd=True) == {"servers": "systemd", "dask_workers": "cgroup-v2"}
    # one OS account for everyone (simple): SystemdSpawner would run units as each hub user
    assert enforcement(False, v2, systemd=True) == {"servers": "cgroup-v2", "dask_workers": "cgroup-v2"}
    v1 = v1_machine(tmp_path / "v1")
    assert enforcement(True, v1, systemd=False) == {"servers": "cgroup-v1", "dask_workers": "cgroup-v1"}
    (tmp_path / "none").mkdir()
    nothing = enforcement(True, tmp_path / "none", systemd=False)
    assert nothing == {"servers": "none", "dask_workers": "none"}
    warning = unenforced_warning(nothing)
    assert warning.startswith(
        "CPU and memory limits are not enforced for servers and dask workers: no writable cgroup "
        "and no systemd"
    )
    assert unenforced_warning(enforcement(True, v2, systemd=True)) is None


def test_v1_limits_go_to_the_memory_and_cpu_hierarchies_and_the_process_joins_all(tmp_path):
    fs = v1_machine(tmp_path)
    for controller, files in V1_FILES.items():  # what the kernel puts in a new group
        (fs / controller / "parhelion-servers-x" / "ann-1").mkdir(parents=True)
        for name in ["cgroup.procs", *files]:
            (fs / controller / "parhelion-servers-x" / "ann-1" / name).write_text("")
    group = ServerGroup.make(
        "parhelion-servers-x/ann-1",
        root=fs / "pids",
        limits=Limits(GIB, 0.5),
        limit_hierarchies=limit_roots(fs),
    )
    server = fs / "memory" / "parhelion-servers-x" / "ann-1"
    assert (server / "memory.limit_in_bytes").read_text() == str(GIB)
    assert (server / "memory.memsw.limit_in_bytes").read_text() == str(GIB)  # no swap beyond it
    cpu = fs / "cpu" / "parhelion-servers-x" / "ann-1"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000"
    assert group.cgroup == fs / "pids" / "parhelion-servers-x" / "ann-1"
    assert set(group.limited) == {server, cpu, fs / "cpuacct" / "parhelion-servers-x" / "ann-1"}
    group.join()  # as the preexec_fn does: this process's pid into every hierarchy
    assert all((d / "cgroup.procs").read_text().strip().isdigit() for d in [group.cgroup, *group.limited])


def test_v2_limits_enable_the_controllers_down_the_tree(tmp_path):
    fs = v2_machine(tmp_path)
    group = fs / "parhelion-dask-x" / "c1" / "worker-a"
    group.mkdir(parents=True)
    for name in ("memory.max", "memory.swap.max", "cpu.max"):
        (group / name).write_text("")
    for folder in (fs / "parhelion-dask-x", fs / "parhelion-dask-x" / "c1"):
        (folder / "cgroup.subtree_control").write_text("")
    written = apply_limits(fs, group, Limits(2 * GIB, 1.5))
    assert written == ["memory.max", "memory.swap.max", "cpu.max"]
    assert (group / "memory.max").read_text() == str(2 * GIB)
    assert (group / "memory.swap.max").read_text() == "0"
    assert (group / "cpu.max").read_text() == "150000 100000"
    for folder in (fs, fs / "parhelion-dask-x", fs / "parhelion-dask-x" / "c1"):
        assert (folder / "cgroup.subtree_control").read_text() == "+memory +cpu"


def test_a_stopped_platform_leaves_no_group_folder_in_any_hierarchy(tmp_path):
    fs = v1_machine(tmp_path)
    for controller in ("pids", "memory", "cpu"):
        (fs / controller / "parhelion-servers-x" / "ann-1").mkdir(parents=True)
        (fs / controller / "parhelion-dask-x" / "c1" / "worker-a").mkdir(parents=True)
    (fs / "pids" / "someone-else").mkdir()
    assert remove_platform_groups(["parhelion-servers-x", "parhelion-dask-x"], fs) == []
    assert not list(fs.glob("*/parhelion-*"))
    assert (fs / "pids" / "someone-else").is_dir()


def test_the_systemd_spawner_is_configured_as_tljh_does_with_one_unit_per_server(capsys):
    c = Config()
    configure_limits(c, {"servers": "systemd", "dask_workers": "cgroup-v2"}, "parhelion-servers-abc")
    assert c.JupyterHub.spawner_class is ParhelionSystemdSpawner
    user = SimpleNamespace(name="ann", id=7, url="/user/ann/", server=None, orm_user=None)
    named = SimpleNamespace(name="big", server=None, state=None, user_options=None)
    spawner = ParhelionSystemdSpawner(user=user, orm_spawner=named, config=c)
    assert spawner.unit_name == "parhelion-servers-abc-ann-big"
    assert ParhelionSystemdSpawner(user=user, config=c).unit_name == "parhelion-servers-abc-ann"
    assert (spawner.isolate_tmp, spawner.isolate_devices, spawner.disable_user_sudo) == (True, True, True)
    assert spawner.unit_extra_properties == {"MemorySwapMax": "0"}
    assert "not enforced" not in capsys.readouterr().err


def test_the_hub_log_says_when_nothing_limits_the_servers(capsys):
    c = Config()
    configure_limits(c, {"servers": "none", "dask_workers": "none"}, "parhelion-servers-abc")
    assert "spawner_class" not in c.JupyterHub  # the grouped spawner stays: a stop still stops all
    assert "CPU and memory limits are not enforced for servers and dask workers" in capsys.readouterr().err


def test_threads_that_probe_at_once_all_find_the_hierarchies(tmp_path):
    """The gateway makes and finds groups from several threads at once: a probe folder shared
    by them (named by pid only) made one thread's rmdir fail, and its worker went unlimited."""
    from concurrent.futures import ThreadPoolExecutor

    fs = v1_machine(tmp_path)
    expected = [fs / c for c in ("memory", "cpu", "cpuacct")]
    with ThreadPoolExecutor(16) as pool:
        found = list(pool.map(lambda _: limit_roots(fs), range(400)))
    assert all(roots == expected for roots in found)


def test_a_group_the_kernel_still_holds_is_removed_in_the_background_without_holding_the_stop(
    tmp_path,
):
    """rmdir of a cgroup whose last process has just died can answer EBUSY for a moment: the
    stop goes on at once, and the folder (with its empty parents) goes as soon as it can."""
    import time

    group = ServerGroup.make("parhelion-x/cluster-1/worker-1", root=tmp_path)
    held = group.cgroup / "cgroup.procs"  # a plain folder with a file stands in for a busy group
    held.write_text("4242\n")
    started = time.monotonic()
    group.remove()
    assert time.monotonic() - started < 0.1 and group.cgroup.exists()
    held.unlink()  # the kernel lets go
    deadline = time.monotonic() + 5
    while (tmp_path / "parhelion-x").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (tmp_path / "parhelion-x").exists()
