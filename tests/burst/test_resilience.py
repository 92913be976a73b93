"""A worker lost mid-burst, as a spot interruption does: every file still ends exactly once.

Workers are processes under nannies (as on a cluster, a lost one is replaced); the kill is
a SIGKILL, nothing said to Dask beforehand.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from platform_tools.burst import burst_map
from tests.burst.test_burst import serial_loop

pytestmark = pytest.mark.integration


def slow_rate(image, header):
    time.sleep(0.15)  # long enough that a batch is in flight when the kill lands
    return float(image.mean()) / header["EXPTIME"]


@pytest.fixture(scope="module")
def nanny_client():
    """Two single-threaded worker processes under nannies (a killed one is restarted)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
            memory_limit="1GiB",
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        yield client


def test_a_worker_killed_mid_run_loses_no_file_and_repeats_none(aia_bucket, nanny_client, s3_server):
    files = aia_bucket.query("aia_94")
    client = nanny_client
    client.wait_for_workers(2)  # a worker killed by the test before is back
    killed = []

    def kill_a_busy_worker(done, total):
        """At the first finished batch of the run, SIGKILL a worker process that is running one."""
        if killed:
            return
        busy = {address: keys for address, keys in client.processing().items() if keys}
        if not busy:  # the pricing pilot's files: the run's batches are not out yet
            return
        address = sorted(busy)[0]
        pid = client.run(os.getpid, workers=[address])[address]
        os.kill(pid, signal.SIGKILL)
        killed.append((address, pid, done))

    run = burst_map(
        slow_rate,
        files,
        client=client,
        storage_options=s3_server.storage_options,
        progress=kill_a_busy_worker,
    )

    assert killed and killed[0][2] < len(files)  # the kill landed mid-run, with a batch in flight
    ended = list(run.results["datakey"]) + list(run.failures["datakey"])
    assert sorted(ended) == sorted(files["datakey"])  # none missing
    assert len(set(ended)) == len(ended)  # none twice
    assert run.failures.empty, run.failures  # the lost batch ran again elsewhere
    expected = serial_loop(files, s3_server.storage_options)
    assert dict(zip(run.results["datakey"], run.results["value"], strict=True)) == pytest.approx(expected)
    assert run.report.succeeded == len(files) and run.report.failed == 0


def _strict_scheduler(allowed_failures, saturation, dask_scheduler=None):
    """Set the scheduler's failure budget and worker saturation; returns the earlier values."""
    before = dask_scheduler.allowed_failures, dask_scheduler.WORKER_SATURATION
    dask_scheduler.allowed_failures, dask_scheduler.WORKER_SATURATION = allowed_failures, saturation
    return before


def crash_on_one(image, header):
    if header["DATE-OBS"].startswith("2024-05-08T01:00"):
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would, on one bad file
    return float(image.mean()) / header["EXPTIME"]


def test_a_file_that_kills_its_worker_fails_alone(aia_bucket, nanny_client, s3_server):
    """Dask gives up on a task whose workers keep dying (KilledWorker); its batch-mates must not fail
    with it: the lost task's files get the second round, one file a task."""
    files = aia_bucket.query("aia_94")
    client = nanny_client
    client.wait_for_workers(2)  # a worker killed by the test before is back
    # Dask gives up at the first death (by default at the fourth: four worker restarts), and a
    # worker holds only the task it runs (by default ~10% more, which that death would take too)
    before = client.run_on_scheduler(_strict_scheduler, allowed_failures=0, saturation=1.0)
    try:
        run = burst_map(
            crash_on_one, files, client=client, storage_options=s3_server.storage_options, progress=False
        )
    finally:
        client.run_on_scheduler(_strict_scheduler, *before)
    poison = files.loc[files["start"].dt.strftime("%H:%M") == "01:00", "datakey"].tolist()
    assert len(poison) == 1
    assert list(run.failures["datakey"]) == poison  # alone: its batch-mates are in the results
    failure = run.failures.iloc[0]
    assert failure["kind"] == "task" and "KilledWorker" in failure["reason"] and failure["attempts"] == 2
    assert sorted(run.results["datakey"]) == sorted(set(files["datakey"]) - set(poison))
    assert run.results["value"].notna().all() and run.report.succeeded == len(files) - 1
