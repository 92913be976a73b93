"""A class on a running local platform, from roster to report: created (students can log in at
once), prewarmed (hub users and homes exist before 9:00), used, closed (servers stopped, homes
archived, access removed, final cost report) - with the same hub process throughout."""

from __future__ import annotations

import asyncio
import csv
import tarfile

import pytest
import requests

from platform_tools.clients.hubclient import HubError, HubUser
from tests.platform import platform_config_text, run_parhelion, running_platform

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("class"), platform_config_text(sample_files=4)) as running:
        yield running


def cli(platform, *args):
    return run_parhelion(*args, "--config", str(platform.config), "--state-dir", str(platform.state))


def test_roster_to_report(platform, tmp_path):
    hub_pid = platform.runtime["pids"]["jupyterhub"]
    roster = tmp_path / "roster.csv"
    roster.write_text("username,email\nstudent001,a@x.org\nstudent002,b@x.org\n")
    done = cli(
        platform,
        "class",
        "create",
        "school",
        "--roster",
        str(roster),
        "--start",
        "2026-01-01",
        "--end",
        "2030-12-31",
        "--session",
        "09:00-12:00",
        "--profile",
        "small",
        "--budget-usd",
        "5",
    )
    assert done.returncode == 0, done.stderr

    done = cli(platform, "class", "prewarm", "school")
    assert done.returncode == 0, done.stderr
    assert "2 users created in the hub, 2 homes prepared" in done.stdout
    assert (platform.state / "homes" / "student002" / "notebooks").is_dir()

    async def work() -> str:
        async with HubUser(platform.url, "student001", platform.password()) as user:
            await user.login()
            await user.start_server()
            kernel = await user.start_kernel()
            await kernel.execute("open('results.txt', 'w').write('my work')", timeout=60)
            await kernel.shutdown()
            return (await user.user_model())["servers"][""]["ready"]

    assert asyncio.run(work()) is True  # left running: close stops it

    done = cli(platform, "class", "close", "school")
    assert done.returncode == 0, done.stderr
    assert "servers stopped: 1" in done.stdout and "2 archived" in done.stdout
    archive = platform.state / "archives" / "school" / "student001.tar.gz"
    with tarfile.open(archive) as kept:
        assert kept.extractfile("student001/results.txt").read() == b"my work"
    rows = list(csv.DictReader((platform.state / "reports" / "school.csv").open()))
    assert [r["user"] for r in rows] == ["student001", "student002", "TOTAL"]

    async def refused() -> bool:
        async with HubUser(platform.url, "student001", platform.password()) as user:
            try:
                await user.login()
            except HubError:
                return True
            return False

    assert asyncio.run(refused())
    assert platform.runtime["pids"]["jupyterhub"] == hub_pid

    # the same report from the accounting service, as `class close --kubernetes` fetches it
    url = f"{platform.url}/services/accounting/api/v1/classes/school/report.csv"
    token = (platform.state / "secrets" / "accounting-api-token").read_text().strip()
    served = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=30)
    assert (
        served.status_code == 200
        and served.text.splitlines()[0] == "user,spent_usd,budget_usd,percent_of_budget"
    )
    assert [line.split(",")[0] for line in served.text.splitlines()[1:]] == [
        "student001",
        "student002",
        "TOTAL",
    ]
    assert requests.get(url, timeout=30).status_code == 403
    unknown = url.replace("/school/", "/nope/")
    assert requests.get(unknown, headers={"Authorization": f"token {token}"}, timeout=30).status_code == 404
    shown = cli(platform, "class", "show", "school")
    assert "status    closed" in shown.stdout
