"""Closing a class takes back what its members hold, on the real local platform (real hub,
gateway and accounting service): a student logged in with a cookie session, an API token of
their own, a running server and a Dask cluster made from their laptop with that token; a TA
in the same roster who is also in the researchers group.

After `parhelion class close`: the student's token is revoked, their server and cluster are
stopped, the hub refuses a spawn from their old cookie session and the gateway a new cluster
from their old Gateway, the accounting checks answer "access"; the TA keeps token, home and
access. Run again, close finishes with nothing left to take.

A class closed by editing platform.yaml alone (as the Ansible roster play does), with nothing
revoked: the hub still honours a token for up to a minute (its admission refresh), so the
gateway's new-cluster check - the accounting service's - is what refuses.
"""

from __future__ import annotations

import asyncio
import re

import pytest
import requests
import yaml

from platform_tools.clients.hubclient import HubUser
from platform_tools.contract.services import AccountingPath, GatewayPath, accounting_api, gateway_api
from tests.platform import platform_config_text, run_parhelion, running_platform

pytestmark = pytest.mark.integration

TA_IN_RESEARCHERS = {"    members: [demo]\n": "    members: [demo, ta001]\n"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    text = platform_config_text(sample_files=4, **TA_IN_RESEARCHERS)
    with running_platform(tmp_path_factory.mktemp("close"), text) as running:
        yield running


def cli(platform, *args):
    return run_parhelion(*args, "--config", str(platform.config), "--state-dir", str(platform.state))


def secret(platform, name: str) -> str:
    return (platform.state / "secrets" / name).read_text().strip()


def as_token(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


async def own_token(user: HubUser) -> str:
    """An API token the person makes for themselves with their cookie session (as the hub's
    token page does)."""
    async with user.session.post(
        f"{user.hub_url}/hub/api/users/{user.username}/tokens",
        json={"note": "laptop"},
        headers={"X-XSRFToken": user._cookie("_xsrf", "/hub") or ""},
    ) as made:
        assert made.status == 201, await made.text()
        return (await made.json())["token"]


def gateway_for(platform, token: str):
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    ports = platform.runtime["ports"]
    return Gateway(
        address=f"{platform.url}/services/dask-gateway",
        proxy_address=f"gateway://127.0.0.1:{ports['gateway_scheduler']}",
        auth=JupyterHubAuth(api_token=token),
        asynchronous=True,
    )


def clusters_of(platform, username: str) -> list[str]:
    origin = f"http://127.0.0.1:{platform.runtime['ports']['gateway']}"
    usage = requests.get(
        gateway_api(origin, GatewayPath.USAGE),
        headers=as_token(secret(platform, "accounting-api-token")),
        timeout=30,
    )
    assert usage.status_code == 200, usage.text
    return [c["name"] for c in usage.json()["clusters"] if c["username"] == username]


def check(platform, path: str, **query) -> dict:
    origin = f"http://127.0.0.1:{platform.runtime['ports']['accounting']}"
    answer = requests.get(
        accounting_api(origin, path),
        params=query,
        headers=as_token(secret(platform, "accounting-api-token")),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_close_revokes_tokens_stops_servers_and_clusters_and_keeps_the_ta(platform, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("username\nstudent001\nta001\n")
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
        "--profile",
        "small",
        "--budget-usd",
        "5",
    )
    assert done.returncode == 0, done.stderr
    assert cli(platform, "class", "prewarm", "school").returncode == 0
    (platform.state / "homes" / "ta001" / "grading.txt").write_text("the TA's work")
    hub = platform.url
    admin = as_token(secret(platform, "admin-api-token"))

    async def scenario() -> dict:
        seen: dict = {}
        async with (
            HubUser(hub, "student001", platform.password()) as student,
            HubUser(hub, "ta001", platform.password()) as ta,
        ):
            await student.login()
            await ta.login()
            token, ta_token = await own_token(student), await own_token(ta)
            await student.start_server()
            gateway = gateway_for(platform, token)
            cluster = await gateway.new_cluster()  # from their laptop, with the token
            seen["cluster_before"] = clusters_of(platform, "student001")

            seen["close"] = await asyncio.to_thread(cli, platform, "class", "close", "school")

            seen["token"] = requests.get(
                f"{hub}/hub/api/user", headers=as_token(token), timeout=30
            ).status_code
            seen["ta_token"] = requests.get(f"{hub}/hub/api/user", headers=as_token(ta_token), timeout=30)
            seen["servers"] = requests.get(
                f"{hub}/hub/api/users/student001", headers=admin, timeout=30
            ).json()
            seen["cluster_after"] = clusters_of(platform, "student001")
            try:  # the same Gateway session, which dask-gateway still knows as student001's
                await gateway.new_cluster()
                seen["new_cluster"] = "created"
            except Exception as error:
                seen["new_cluster"] = str(error)
            async with student.session.post(
                f"{hub}/hub/api/users/student001/server",
                headers={"X-XSRFToken": student._cookie("_xsrf", "/hub") or ""},
            ) as spawn:  # their cookie session from before the close
                seen["spawn"] = spawn.status
            seen["servers_after_spawn"] = requests.get(
                f"{hub}/hub/api/users/student001", headers=admin, timeout=30
            ).json()["servers"]
            await cluster.close(shutdown=False)  # the close stops it
            await gateway.close()
        return seen

    seen = asyncio.run(scenario())
    close = seen["close"]
    assert close.returncode == 0, close.stderr
    assert seen["cluster_before"], "the student's cluster ran before the close"
    counted = re.search(
        r"access removed from 1 member\(s\): (\d+) token\(s\) revoked, "
        r"1 server\(s\) and 1 Dask cluster\(s\) stopped",
        close.stdout,
    )
    assert counted and int(counted[1]) >= 1, close.stdout
    assert "kept access (in other groups, or admins): ta001" in close.stdout
    assert "servers stopped: 1" in close.stdout

    # the student: token revoked, server and cluster stopped, nothing new anywhere
    assert seen["token"] in (401, 403)
    assert seen["servers"]["servers"] == {} and seen["cluster_after"] == []
    assert seen["new_cluster"] != "created"
    assert seen["spawn"] in (403, 500) and seen["servers_after_spawn"] == {}
    for path, query in (
        (AccountingPath.CHECK_SPAWN, {"profile": "small"}),
        (AccountingPath.CHECK_CLUSTER, {}),
    ):
        verdict = check(platform, path, user="student001", **query)
        assert (verdict["allowed"], verdict["rule"]) == (False, "access"), verdict
    assert (platform.state / "archives" / "school" / "student001.tar.gz").exists()
    assert not (platform.state / "homes" / "student001").exists()

    # the TA, in the researchers group too: token, home and access kept
    assert seen["ta_token"].status_code == 200 and seen["ta_token"].json()["name"] == "ta001"
    assert (platform.state / "homes" / "ta001" / "grading.txt").read_text() == "the TA's work"
    assert not (platform.state / "archives" / "school" / "ta001.tar.gz").exists()
    assert check(platform, AccountingPath.CHECK_SPAWN, user="ta001", profile="small")["allowed"] is True
    assert check(platform, AccountingPath.CHECK_CLUSTER, user="ta001")["allowed"] is True

    # run again (say, after an interruption): nothing left to take, the archive intact
    again = cli(platform, "class", "close", "school")
    assert again.returncode == 0, again.stderr
    assert "0 token(s) revoked, 0 server(s) and 0 Dask cluster(s) stopped" in again.stdout
    assert (platform.state / "archives" / "school" / "student001.tar.gz").stat().st_size > 0


def test_a_class_closed_in_platform_yaml_gets_no_new_cluster_through_the_gateway(platform, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("username\nstudent002\n")
    created = cli(
        platform,
        "class",
        "create",
        "lab",
        "--roster",
        str(roster),
        "--start",
        "2026-01-01",
        "--end",
        "2030-12-31",
        "--profile",
        "small",
        "--budget-usd",
        "5",
    )
    assert created.returncode == 0, created.stderr

    async def scenario() -> tuple[str, str]:
        async with HubUser(platform.url, "student002", platform.password()) as student:
            await student.login()
            gateway = gateway_for(platform, await own_token(student))
            cluster = await gateway.new_cluster()
            live = platform.state / "platform.yaml"  # what the hub, gateway and accounting follow
            config = yaml.safe_load(live.read_text())
            config["groups"]["lab"]["course"]["status"] = "closed"
            live.write_text(yaml.safe_dump(config, sort_keys=False))
            try:
                await gateway.new_cluster()
                refusal = "created"
            except Exception as error:
                refusal = str(error)
            await cluster.close(shutdown=False)  # the close stops it
            await gateway.close()
            return cluster.name, refusal

    _, refusal = asyncio.run(scenario())
    assert "Your class (lab) has closed: you can no longer start servers or Dask clusters" in refusal
    assert cli(platform, "class", "close", "lab").returncode == 0  # and whatever is left is taken back
    assert clusters_of(platform, "student002") == []
