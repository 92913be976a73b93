"""`parhelion loadtest` against the local Daskhub set up for a class: 20 students arrive over
20 s, each logs in through the form with their own first-use password, starts a server as their
own Unix account, opens JupyterLab, runs a notebook, idles and stops; two of them also start a
Dask cluster through the gateway (its processes their accounts too). Every one must succeed,
and the report must carry time-to-ready percentiles, the hub's CPU and memory, and the run's
cost. Needs root and an interpreter students can run (tests/isolation.py)."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from platform_tools.config import load_platform
from platform_tools.config.edit import PlatformChange, change_file
from tests.isolation import isolated_config_text, isolated_place, isolation_unavailable
from tests.platform import run_parhelion, running_platform

# serial: twenty students at once load the machine by themselves
pytestmark = [pytest.mark.integration, pytest.mark.serial]
NOTEBOOK = Path(__file__).parent / "data" / "student.ipynb"

if isolation_unavailable():
    pytest.skip(isolation_unavailable(), allow_module_level=True)


@pytest.fixture(scope="module")
def platform():
    with (
        isolated_place() as (prefix, root),
        running_platform(root / "platform", isolated_config_text(prefix, root)) as running,
    ):
        yield running


def loadtest(platform, tmp_path, *args):
    out = tmp_path / "report.json"
    done = run_parhelion(
        "loadtest",
        "--config",
        str(platform.config),
        "--state-dir",
        str(platform.state),
        "--json",
        str(out),
        *args,
        timeout=900,
    )
    return done, (json.loads(out.read_text()) if out.exists() else None)


def test_twenty_students(platform, tmp_path):
    hub_pid = platform.runtime["pids"]["jupyterhub"]
    done, report = loadtest(
        platform,
        tmp_path,
        "--users",
        "20",
        "--ramp",
        "20",
        "--profile",
        "small",
        "--notebook",
        str(NOTEBOOK),
        "--idle",
        "2",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded           20 of 20" in done.stdout
    assert all(o["failure"] is None and o["ready_seconds"] > 0 for o in report["outcomes"])
    assert {"login", "spawn", "lab", "notebook"} <= set(report["outcomes"][0]["steps"])
    assert 0 < report["p50"] <= report["p95"]
    assert report["hub_cpu"] and max(report["hub_rss_mib"]) > 50
    assert report["estimated_usd"] > 0 and report["metered_usd"] is not None
    # the temporary students are gone again, and the hub is the same process
    assert not any(
        name.startswith("loadtest") for name in load_platform(platform.state / "platform.yaml").groups
    )
    assert platform.runtime["pids"]["jupyterhub"] == hub_pid


def test_students_with_dask_clusters(platform, tmp_path):
    done, report = loadtest(
        platform,
        tmp_path,
        "--users",
        "2",
        "--ramp",
        "2",
        "--dask-workers",
        "1",
        "--idle",
        "0",
        "--prefix",
        "dask",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert all("dask" not in (o["failure"] or ("", ""))[0] for o in report["outcomes"])


def test_any_hub_by_url_with_its_load_read_from_hub_metrics(platform, tmp_path):
    """As against a deployment: students that exist already, the password and a token that may read
    /hub/metrics given in files. The hub's memory read there is the hub process's own."""
    change_file(
        platform.state / "platform.yaml",
        PlatformChange(groups={"remote": {"members": ["remote001", "remote002"]}}),
    )
    try:
        hub = psutil.Process(platform.runtime["pids"]["jupyterhub"])
        password, token = tmp_path / "password", tmp_path / "token"
        password.write_text(platform.password())
        token.write_text((platform.state / "secrets" / "admin-api-token").read_text())
        args = [
            "--url",
            platform.url,
            "--password-file",
            str(password),
            "--prefix",
            "remote",
            "--idle",
            "3",
            "--ramp",
            "1",
        ]
        done, report = loadtest(platform, tmp_path, *args, "--users", "2", "--metrics-token-file", str(token))
        assert done.returncode == 0, done.stdout + done.stderr
        assert report["hub_source"] == "/hub/metrics" and report["hub_problem"] is None
        assert report["hub_cpu"] and all(cpu >= 0 for cpu in report["hub_cpu"])
        assert 0.7 < max(report["hub_rss_mib"]) / (hub.memory_info().rss / 2**20) < 1.4
        assert "(/hub/metrics)" in done.stdout

        # a token without the scope: the students still run, and the report says what the token lacks
        token.write_text("not-a-token")
        done, report = loadtest(platform, tmp_path, *args, "--users", "1", "--metrics-token-file", str(token))
        assert done.returncode == 0, done.stdout + done.stderr
        assert not report["hub_cpu"] and "the token needs the read:metrics scope" in report["hub_problem"]
        assert "hub load            not measured: " in done.stdout

        # a password file that is not there: said, nothing run
        done, _ = loadtest(
            platform,
            tmp_path,
            "--url",
            platform.url,
            "--password-file",
            str(tmp_path / "nope"),
            "--users",
            "1",
        )
        assert done.returncode == 1 and f"{tmp_path / 'nope'}: No such file or directory" in done.stderr
    finally:
        change_file(platform.state / "platform.yaml", PlatformChange(remove_groups=["remote"]))


def test_a_failure_is_reported_with_its_step(platform, tmp_path):
    """A notebook cell that fails: reported with its step and reason, the server still stopped, exit 2."""
    bad = tmp_path / "bad.ipynb"
    bad.write_text(
        NOTEBOOK.read_text().replace("assert abs(data.mean() - 100) < 1", "assert False, 'exercise failed'")
    )
    done, report = loadtest(
        platform, tmp_path, "--users", "1", "--ramp", "0", "--notebook", str(bad), "--idle", "0"
    )
    assert done.returncode == 2
    assert "FAILED at notebook x1" in done.stdout and "exercise failed" in done.stdout
    assert report["outcomes"][0]["server_seconds"] > 0  # its server was stopped after the failure
