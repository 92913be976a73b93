"""The hub's load, as a load test reads it: a process's CPU really measured, a process that goes
away or metrics that lack the figures said in words rather than failing the run. (Reading a
real hub's /hub/metrics is in tests/classes/test_loadtest.py.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from platform_tools.classes.hubload import MonitorError, ProcessMonitor, process_figures

# serial: measures a process's CPU, which a test beside it would take
pytestmark = [pytest.mark.unit, pytest.mark.serial]

EXPOSITION = """\
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 41.27
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.5794176e+08
# HELP jupyterhub_running_servers the number of user servers currently running
# TYPE jupyterhub_running_servers gauge
jupyterhub_running_servers 20.0
"""


def test_the_figures_are_read_from_an_exposition():
    assert process_figures(EXPOSITION, "hub") == (41.27, 157941760.0)


def test_missing_figures_are_named():
    text = EXPOSITION.split("# HELP process_resident")[0]
    with pytest.raises(MonitorError, match="hub has no process_resident_memory_bytes .not a Linux hub"):
        process_figures(text, "hub")
    with pytest.raises(MonitorError, match="hub: not Prometheus metrics"):
        process_figures("<html>login</html>\n", "hub")


def watched(seconds: float, interval: float, watch_for: float) -> tuple[ProcessMonitor, int]:
    """A process spinning one core for ``seconds``, watched every ``interval`` for ``watch_for``."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
    child = subprocess.Popen([sys.executable, "-c", code])

    async def watch() -> ProcessMonitor:
        async with ProcessMonitor(child.pid, interval=interval) as monitor:
            await asyncio.sleep(watch_for)
        return monitor

    try:
        return asyncio.run(watch()), child.pid
    finally:
        child.kill()
        child.wait()


def test_a_busy_process_measures_about_one_core():
    monitor, _ = watched(3.0, interval=0.5, watch_for=2.2)
    assert len(monitor.cpu) >= 3 and monitor.problem is None
    # one core spinning: on a shared 2-core machine at least a third of it, never much above one
    assert 33 < max(monitor.cpu) < 130, monitor.cpu
    assert all(5 < mib < 200 for mib in monitor.rss_mib), monitor.rss_mib


def test_a_process_that_ends_is_said_not_raised():
    """The child ends while watched (a zombie: nobody reaps it meanwhile): a problem, not a crash."""
    monitor, pid = watched(0.6, interval=0.3, watch_for=1.6)
    assert monitor.problem and f"hub process {pid}" in monitor.problem
