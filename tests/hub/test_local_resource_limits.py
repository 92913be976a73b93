"""CPU and memory limits of local servers and Dask workers, enforced by the kernel's cgroups.

One real platform (`parhelion up`, real hub, gateway and servers), shared with the test that a
server's stop stops its ``nohup`` jobs and daemons. Two users: demo's server
runs the ``small`` profile, made 0.5 CPU and 1 GiB here; admin's runs ``medium`` and drives a
Dask cluster of two 1 GiB workers. A memory hog in demo's server is killed at its limit while
admin's server answers; two CPU burners in demo's server use half a core between them; a hog on
one worker kills that worker only; a ``nohup`` job started on a worker dies with its cluster;
after the platform stops, no group folder of it is left in any hierarchy.

Needs root and a writable cgroup (as in CI); elsewhere it is skipped, and `parhelion up`
warns that limits are not enforced (tests/local/test_cgroups.py tests that decision).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from platform_tools.clients.hubadmin import HubAdmin
from platform_tools.clients.hubclient import HubUser
from platform_tools.local.cgroups import CGROUP_FS, cgroup_kind, limit_roots
from platform_tools.local.servergroup import dask_group_base, group_base, server_id
from tests.hub.test_local_stop import START_ESCAPEES, _marker, alive
from tests.platform import platform_config_text, running_platform

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or cgroup_kind() == "none",
        reason="needs root and a writable cgroup hierarchy (memory and cpu) to make limited groups",
    ),
]
GIB = 2**30

SMALL = {  # demo's profile: half a core, 1 GiB
    "cpu_guarantee: 0.5\n    cpu_limit: 1\n    mem_guarantee_gib: 1\n    mem_limit_gib: 2\n": (
        "cpu_guarantee: 0.5\n    cpu_limit: 0.5\n    mem_guarantee_gib: 0.5\n    mem_limit_gib: 1\n"
    )
}

HOG = "b = b'x' * (2 * 2**30)"  # 2 GiB, every page written

START_CLUSTER = """
import json, os, subprocess
from dask_gateway import Gateway
cluster = Gateway().new_cluster(worker_memory=1, worker_cores=1)
cluster.scale(2)
client = cluster.get_client()
client.wait_for_workers(2, timeout=120)
pids = client.run(os.getpid)
print(json.dumps({"cluster": cluster.name, "pids": pids}))
"""


def files(identity: str) -> dict[str, Path]:
    """A group's folder in each limiting hierarchy, by what it holds (memory, cpu, usage)."""
    found = {}
    groups = [root / identity for root in limit_roots()]
    for kind, probes in (
        ("memory", ("memory.limit_in_bytes", "memory.max")),
        ("cpu", ("cpu.cfs_quota_us", "cpu.max")),
        ("usage", ("cpuacct.usage", "cpu.max")),  # v1 cpuacct, or v2's cpu.stat beside cpu.max
    ):
        for probe in probes:
            for group in groups:
                if kind not in found and (group / probe).exists():
                    found[kind] = group
    return found


def memory_limit(group: Path) -> int:
    name = "memory.limit_in_bytes" if (group / "memory.limit_in_bytes").exists() else "memory.max"
    return int((group / name).read_text())


def cpu_quota(group: Path) -> float:
    if (group / "cpu.max").exists():
        quota, period = (group / "cpu.max").read_text().split()
    else:
        quota, period = (group / "cpu.cfs_quota_us").read_text(), (group / "cpu.cfs_period_us").read_text()
    return int(quota) / int(period)


def oom_kills(group: Path) -> int:
    events = group / ("memory.oom_control" if (group / "memory.oom_control").exists() else "memory.events")
    for line in events.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    raise AssertionError(f"no oom_kill count in {events}")


def cpu_seconds(group: Path) -> float:
    if (group / "cpuacct.usage").exists():
        return int((group / "cpuacct.usage").read_text()) / 1e9
    stat = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines())
    return int(stat["usage_usec"]) / 1e6


def stdout(outputs: list) -> str:
    return "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    text = platform_config_text(sample_files=4, **SMALL)
    with running_platform(tmp_path_factory.mktemp("limits"), text) as platform:
        yield platform


def test_runtime_json_says_what_enforces_the_limits(platform):
    kind = cgroup_kind()
    assert platform.runtime["limits"] == {"servers": kind, "dask_workers": kind}
    assert "not enforced" not in platform.output


def test_stopping_a_server_through_the_hub_api_stops_its_nohup_jobs_and_daemons(platform):
    """A ``nohup`` job and ``setsid`` double-forked daemons (one with its environment cleared)
    started from a kernel; the server stopped through the hub's REST API, as the enforcer
    stops it. Before the fix only the server's pid was signalled and all three ran on."""
    escapees: dict[str, int] = {}
    in_cgroup: list[Path] = []
    base = group_base(platform.state)

    async def scenario() -> None:
        async with HubUser(platform.url, "demo", platform.password()) as user:
            await user.login()
            await user.start_server()
            kernel = await user.start_kernel()
            outputs = await kernel.execute(START_ESCAPEES, timeout=60)
            started = json.loads("".join(o.get("text", "") for o in outputs if o.get("name") == "stdout"))
            escapees.update(started)
            assert len(alive(started.values())) == 3, "all three run while the server runs"
            in_cgroup.extend(Path("/sys/fs/cgroup").glob(f"*/{base}/*"))
            token = (platform.state / "secrets" / "admin-api-token").read_text().strip()
            async with HubAdmin(f"{platform.url}/hub/api", token) as admin:
                assert await admin.stop_server("demo")  # as the enforcer: DELETE .../server

    try:
        asyncio.run(scenario())
        deadline = time.monotonic() + 15
        while alive(escapees.values()) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert len(escapees) == 3
        left = {name: pid for name, pid in escapees.items() if alive([pid])}
        assert not left, f"outlived the stop: {left}"
        marked = [p.pid for p in psutil.process_iter() if _marker(p.pid) == server_id(base, "demo", "")]
        assert not marked
        # here a cgroup hierarchy is writable: the server ran in a cgroup, gone with it
        assert in_cgroup, "the server ran in a cgroup of its own"
        assert not list(Path("/sys/fs/cgroup").glob(f"*/{base}/*"))
    finally:
        for pid in alive(escapees.values()):
            os.kill(pid, signal.SIGKILL)


def test_a_memory_hog_is_killed_at_its_servers_limit_and_cpu_stays_within_half_a_core(platform):
    """(a) demo's hog dies at 1 GiB, demo's server and admin's server keep answering; (b) two
    burners in demo's server use about half a core between them, not two."""
    demo_group = server_id(group_base(platform.state), "demo", "")

    async def scenario() -> dict:
        async with (
            HubUser(platform.url, "demo", platform.password()) as demo,
            HubUser(platform.url, "admin", platform.password("admin")) as admin,
        ):
            await asyncio.gather(demo.login(), admin.login())
            await asyncio.gather(demo.start_server(), admin.start_server(profile="medium"))
            demo_kernel, admin_kernel = await demo.start_kernel(), await admin.start_kernel()
            groups = files(demo_group)
            result = {
                "memory": memory_limit(groups["memory"]),
                "cpu": cpu_quota(groups["cpu"]),
                "oom_before": oom_kills(groups["memory"]),
            }
            hog = f"import subprocess, sys\nprint(subprocess.run([sys.executable, '-c', {HOG!r}]).returncode)"
            result["hog"] = stdout(await demo_kernel.execute(hog, timeout=120)).strip()
            result["oom_after"] = oom_kills(groups["memory"])
            result["admin"] = stdout(await admin_kernel.execute("print(6 * 7)", timeout=60)).strip()
            result["demo"] = stdout(await demo_kernel.execute("print(2 + 3)", timeout=60)).strip()
            burn = (
                "import subprocess, sys\n"
                "burners = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(2)]"
            )
            await demo_kernel.execute(burn, timeout=60)
            await asyncio.sleep(1)
            before, started = cpu_seconds(groups["usage"]), time.monotonic()
            await asyncio.sleep(3)
            result["cores"] = (cpu_seconds(groups["usage"]) - before) / (time.monotonic() - started)
            await demo_kernel.execute("for b in burners: b.kill()", timeout=60)
            result["ready"] = [
                bool(((await user.user_model()).get("servers") or {}).get("", {}).get("ready"))
                for user in (demo, admin)
            ]
            await demo.stop_server()  # admin's keeps running: the Dask test uses it
            return result

    result = asyncio.run(scenario())
    assert result["memory"] == GIB and result["cpu"] == pytest.approx(0.5)
    assert result["hog"] == "-9", "the hog was killed (SIGKILL by the OOM killer)"
    assert result["oom_after"] > result["oom_before"], "by its server's memory limit"
    assert result["admin"] == "42" and result["demo"] == "5"
    assert result["ready"] == [True, True]
    assert result["cores"] <= 0.5 * 1.3, f"two burners used {result['cores']:.2f} cores"
    # removed with it (a group the kernel still holds for a moment goes in a background retry)
    deadline = time.monotonic() + 10
    while files(demo_group) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not files(demo_group), "the server's groups are removed with it"


def test_a_dask_worker_is_limited_to_its_size_and_a_nohup_job_dies_with_the_cluster(platform):
    """(c) each worker's group is limited to worker_memory; a hog on one worker kills that
    worker only; (d) a `nohup sleep` started on a worker dies when the cluster stops."""
    base = dask_group_base(platform.state)

    async def scenario() -> dict:
        async with HubUser(platform.url, "admin", platform.password("admin")) as admin:
            await admin.login()
            await admin.start_server(profile="medium")  # running already, when the module runs
            kernel = await admin.start_kernel()
            started = json.loads(stdout(await kernel.execute(START_CLUSTER, timeout=240)))
            workers = sorted(started["pids"].items())
            (hogged, hog_pid), (spared, spared_pid) = workers
            folder = Path(limit_roots()[0]) / base / started["cluster"]
            groups = {}
            for child in folder.iterdir():
                if child.name.startswith("worker-"):
                    limited = files(f"{base}/{started['cluster']}/{child.name}")
                    procs = (limited["memory"] / "cgroup.procs").read_text().split()
                    groups[hog_pid if str(hog_pid) in procs else spared_pid] = limited
            result = {
                "memory": {pid: memory_limit(g["memory"]) for pid, g in groups.items()},
                "cpu": {pid: cpu_quota(g["cpu"]) for pid, g in groups.items()},
            }
            # Dask's own monitor (the nanny restarts a worker at 95 % of its memory) is stopped,
            # so that what kills the worker is the kernel at the cgroup's limit.
            hog = (
                "def hog():\n"
                f"    {HOG}\n"
                "client.run(lambda dask_worker: dask_worker.periodic_callbacks['memory_monitor'].stop(),"
                " nanny=True)\n"
                "try:\n"
                f"    client.run(hog, workers=[{hogged!r}])\n"
                "except Exception as error:\n"
                "    print(type(error).__name__)\n"
            )
            await kernel.execute(hog, timeout=120)
            deadline = time.monotonic() + 15  # until the nanny has reaped the killed process
            while all(psutil.pid_exists(pid) for pid in groups) and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
            result["oom"] = {pid: oom_kills(g["memory"]) for pid, g in groups.items()}
            result["alive"] = {pid: psutil.pid_exists(pid) for pid in (hog_pid, spared_pid)}
            nohup = (
                "out = client.run(lambda: subprocess.run('nohup sleep 1000 >/dev/null 2>&1 & echo $!',"
                f" shell=True, capture_output=True, text=True).stdout, workers=[{spared!r}])\n"
                f"print(int(out[{spared!r}]))"
            )
            result["nohup"] = int(stdout(await kernel.execute(nohup, timeout=60)))
            await kernel.execute("cluster.shutdown()", timeout=120)
            deadline = time.monotonic() + 30
            while (psutil.pid_exists(result["nohup"]) or folder.exists()) and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
            result["nohup_alive"] = psutil.pid_exists(result["nohup"])
            result["folder_left"] = folder.exists()
            return result  # admin's server runs on: the platform's stop must remove its groups too

    result = asyncio.run(scenario())
    assert set(result["memory"].values()) == {GIB} and len(result["memory"]) == 2
    assert set(result["cpu"].values()) == {1.0}
    oom = result["oom"]
    assert sorted(oom.values())[0] == 0 and sorted(oom.values())[1] >= 1, oom
    killed = [pid for pid, count in oom.items() if count]
    assert [result["alive"][pid] for pid in killed] == [False], "the hogged worker was killed"
    assert [alive for pid, alive in result["alive"].items() if pid not in killed] == [True]
    assert not result["nohup_alive"], "the nohup job outlived its cluster"
    assert not result["folder_left"], "the cluster's groups are removed with it"


def test_no_group_folder_is_left_after_the_platform_stops(platform):
    """(e) runs last on the module's platform, and stops it while admin's server runs."""
    bases = (group_base(platform.state), dask_group_base(platform.state))
    platform.stop()
    left = [str(path) for base in bases for path in CGROUP_FS.glob(f"*/{base}")]
    assert not left, left
