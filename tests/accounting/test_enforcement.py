"""Quotas and budgets enforced while things run, on the real local platform.

A user with a tiny budget is warned, refused, then stopped within the grace period;
aggregate Dask limits hold across two clusters; a home over its storage quota is warned
and refused a new server; spend is private; a kill -9 of the accounting service loses no
usage.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from platform_tools.clients.hubclient import CellError, HubError, HubUser
from platform_tools.ledger.store import Ledger
from tests.platform import (
    LocalPlatform,
    platform_config_text,
    processes_of,
    run_in_a_users_kernel,
    running_platform,
    server_with_cluster,
)

pytestmark = pytest.mark.integration

FAST_METER = {
    "  sample_interval_seconds: 15\n": (
        "  sample_interval_seconds: 1\n  enforce_interval_seconds: 1\n  storage_check_interval_seconds: 1\n"
    )
}


def run(coro):
    return asyncio.run(coro)


async def api(user: HubUser, path: str, method: str = "GET") -> tuple[int, dict]:
    url = f"{user.hub_url}/services/accounting/{path}"
    # as a browser page's script would: the service's _xsrf cookie, echoed in a header
    headers = {"X-XSRFToken": user._cookie("_xsrf", "/services/accounting") or ""}
    async with user.session.request(method, url, headers=headers) as answer:
        text = await answer.text()
        try:
            return answer.status, json.loads(text)
        except ValueError:
            return answer.status, {"text": text}


def dask_processes(platform: LocalPlatform) -> list[str]:
    found = []
    for proc in processes_of(platform.state):
        try:
            line = " ".join(proc.cmdline())
        except Exception:
            continue
        if "dask scheduler" in line or "dask worker" in line:
            found.append(line)
    return found


# --------------------------------------------------------------- tiny budget


@pytest.fixture(scope="module")
def tiny_budget_platform(tmp_path_factory):
    text = platform_config_text(
        sample_files=4,
        **FAST_METER,
        **{
            "      usd: 25  ": "      usd: 0.0006  ",
            "      grace_minutes: 5\n": "      grace_minutes: 0.25\n",
        },
    )
    with running_platform(tmp_path_factory.mktemp("tiny"), text) as platform:
        yield platform


def test_over_budget_user_is_warned_refused_then_stopped(tiny_budget_platform):
    platform = tiny_budget_platform

    async def scenario():
        async with HubUser(platform.url, "demo", platform.password()) as user:
            kernel = await server_with_cluster(user, workers=1)
            assert dask_processes(platform), "the cluster should be running"
            # spend grows: wait for the hard cap
            deadline = time.monotonic() + 120
            report = {}
            while time.monotonic() < deadline:
                status, report = await api(user, "api/v1/users/demo")
                assert status == 200, report
                if report["budget"]["capped"]:
                    break
                await asyncio.sleep(1)
            assert report["budget"]["capped"], report["budget"]
            # refused: a new cluster, with the rule and the numbers
            try:
                await kernel.execute("Gateway().new_cluster()", timeout=60)
                refusal = None
            except CellError as error:
                refusal = error.evalue
            # stopped within the grace period (15 s) plus enforcement latency
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and (await user.user_model()).get("servers"):
                await asyncio.sleep(1)
            servers_left = (await user.user_model()).get("servers")
            # refused: a new server, as the spawn page says
            try:
                await user.start_server(timeout=60)
                spawn_refusal = None
            except HubError as error:
                spawn_refusal = str(error)
            status, report = await api(user, "api/v1/users/demo")
            return refusal, servers_left, spawn_refusal, report

    refusal, servers_left, spawn_refusal, report = run(scenario())
    assert refusal is not None and "No new Dask cluster: your budget: $0.00 of $0.00 spent" in refusal
    assert "resets 2026-12-01 00:00 UTC" in refusal or "resets " in refusal
    assert "Contact the admins of this machine (admin@localhost)" in refusal
    assert not servers_left
    deadline = time.monotonic() + 30
    while dask_processes(platform) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not dask_processes(platform), "the user's Dask cluster should be stopped"
    assert spawn_refusal is not None and "No new server: your budget" in spawn_refusal

    events = report["events"]
    actions = [(event["action"], event["rule"]) for event in events]
    # refusals read spend live, so one may be recorded before the enforcer's next pass
    enforced = [action for action in actions if action[0] != "refuse"]
    assert enforced[:4] == [
        ("warn", "budget-50%"),
        ("warn", "budget-80%"),
        ("warn", "budget-100%"),
        ("cap", "budget-cap"),
    ], actions
    assert ("refuse", "budget") in actions
    stops = [event for event in events if event["action"] == "stop"]
    assert len(stops) == 1
    assert "the grace period after the hard cap ended" in stops[0]["message"]
    assert "server (default)" in stops[0]["message"] and "cluster" in stops[0]["message"]
    cap_at = next(e["at"] for e in events if e["action"] == "cap")
    from datetime import datetime

    waited = (datetime.fromisoformat(stops[0]["at"]) - datetime.fromisoformat(cap_at)).total_seconds()
    assert 15 <= waited <= 15 + 60, waited  # the grace, then within 60 s


# ------------------------------------------------ limits, privacy, recovery


@pytest.fixture(scope="module")
def quota_platform(tmp_path_factory):
    text = platform_config_text(
        sample_files=4,
        **FAST_METER,
        **{
            "      max_dask_cores: 4\n": "      max_dask_cores: 3\n",
            # a user in no group, with a home quota of 10 MiB
            "  users: [demo]\n": "  users: [demo, filler]\n",
            "    quota: {max_servers: 2}\n": (
                "    quota: {max_servers: 2}\n  filler:\n    quota: {storage_gib: 0.01}\n"
            ),
        },
    )
    with running_platform(tmp_path_factory.mktemp("quota"), text) as platform:
        yield platform


AGGREGATE = """
import json, time
from dask_gateway import Gateway
g = Gateway()
out = {}
a = g.new_cluster()
a.scale(5)                      # asks for 5; 1 scheduler + 2 workers fill the 3-core quota
ca = a.get_client()
ca.wait_for_workers(2, timeout=120)
time.sleep(4)
out["a_workers"] = len(ca.scheduler_info()["workers"])
# a refused new_cluster() from a shared Gateway leaves the client's other clusters
# hanging (dask-gateway client), so refused attempts use a Gateway of their own
try:
    Gateway().new_cluster()
    out["b_when_full"] = "created"
except Exception as exc:
    out["b_when_full"] = str(exc)
a.scale(1)                      # frees a core: room for one more scheduler
deadline = time.time() + 60
while len(ca.scheduler_info()["workers"]) > 1 and time.time() < deadline:
    time.sleep(0.5)
# the retired worker's process holds its core until it has exited (a second or two after
# the scheduler lets it go): until then a new cluster does not fit
deadline = time.time() + 30
while True:
    try:
        b = Gateway().new_cluster()
        break
    except Exception:
        if time.time() > deadline:
            raise
        time.sleep(0.5)
b.scale(3)                      # nothing left for workers
time.sleep(6)
out["b_workers"] = len(b.get_client().scheduler_info()["workers"])
try:
    Gateway().new_cluster()
    out["third"] = "created"
except Exception as exc:
    out["third"] = str(exc)
a.shutdown(); b.shutdown()
print(json.dumps(out))
"""


def test_aggregate_dask_limits_span_clusters(quota_platform):
    outputs = run_in_a_users_kernel(quota_platform, AGGREGATE, timeout=300)
    stdout = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["a_workers"] == 2
    assert "a new cluster does not fit" in out["b_when_full"]
    assert "already use 3 of 3 cores" in out["b_when_full"]
    assert out["b_workers"] == 0
    assert "You already have 2 Dask cluster(s) running, the most your quota allows (2)" in out["third"]


def test_spend_is_private_and_quotas_are_not_changed_over_http(quota_platform):
    async def scenario():
        async with (
            HubUser(quota_platform.url, "demo", quota_platform.password()) as demo,
            HubUser(quota_platform.url, "admin", quota_platform.password("admin")) as admin,
        ):
            await demo.login()
            await admin.login()
            return {
                "own": await api(demo, "api/v1/users/demo"),
                "other": await api(demo, "api/v1/users/admin"),
                "all": await api(demo, "api/v1/users"),
                "change": await api(demo, "api/v1/users/demo/quota", "PUT"),
                "admin_other": await api(admin, "api/v1/users/demo"),
                "admin_all": await api(admin, "api/v1/users"),
                "admin_change": await api(admin, "api/v1/users/demo/quota", "PUT"),
            }

    answers = run(scenario())
    assert answers["own"][0] == 200 and answers["own"][1]["user"] == "demo"
    assert answers["other"] == (403, {"status": 403, "message": "you may only see your own spend"})
    assert answers["all"][0] == 403
    assert answers["change"] == (403, {"status": 403, "message": "you may not change quotas"})
    assert answers["admin_other"][0] == 200
    assert {row["user"] for row in answers["admin_all"][1]["users"]} >= {"admin", "demo"}
    assert answers["admin_change"][0] == 405


def test_metrics_need_the_token(quota_platform):
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{quota_platform.runtime['ports']['accounting']}/services/accounting/metrics"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=10)
    assert caught.value.code == 403
    token = (quota_platform.state / "secrets" / "accounting-api-token").read_text().strip()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    body = urllib.request.urlopen(request, timeout=10).read().decode()
    assert 'parhelion_user_budget_usd{user="demo"} 25.0' in body
    assert "parhelion_meter_samples_total" in body


def test_a_home_over_its_storage_quota_is_warned_and_refused_a_new_server(quota_platform):
    """12 MiB in a 10 MiB home: both warnings are told (once) and shown on the spend page,
    the hub refuses a new server with the sentence, and once the file is deleted it starts."""
    home = quota_platform.state / "homes" / "filler"
    home.mkdir(parents=True, exist_ok=True)
    (home / "simulation.bin").write_bytes(os.urandom(12 * 2**20))

    async def scenario():
        async with HubUser(quota_platform.url, "filler", quota_platform.password()) as user:
            await user.login()
            deadline = time.monotonic() + 30
            rules: list[str] = []
            while time.monotonic() < deadline and "storage-100%" not in rules:
                await asyncio.sleep(1)
                status, report = await api(user, "api/v1/users/filler")
                assert status == 200, report
                rules = [event["rule"] for event in report["events"] if event["action"] == "warn"]
            await asyncio.sleep(2)  # two more enforcer passes: still told once
            status, report = await api(user, "api/v1/users/filler")
            page = (await api(user, ""))[1]["text"]
            try:
                await user.start_server(timeout=60)
                refusal = None
            except HubError as error:
                refusal = str(error)
            (home / "simulation.bin").unlink()
            await user.start_server(timeout=60)  # the check measures the home again at once
            await user.stop_server()
            return report, page, refusal

    report, page, refusal = run(scenario())
    warnings = [(e["rule"], e["count"]) for e in report["events"] if e["action"] == "warn"]
    assert warnings == [("storage-80%", 1), ("storage-100%", 1)], report["events"]
    assert report["storage"]["over"] and report["storage"]["quota_gib"] == 0.01
    assert "Your home uses 0.0117 GiB of your 0.01 GiB storage quota (117%)" in page
    assert "over the quota: new servers are refused until you delete files" in page
    assert (
        refusal is not None
        and (
            "No new server: your home uses 0.0117 GiB of your 0.01 GiB storage quota (117%). Delete files "
            "to get under it (from a terminal on a server you still run), or ask the admins of this "
            "machine (admin@localhost) to delete some or raise your quota; then start again."
        )
        in refusal
    ), refusal
    import urllib.request

    url = f"http://127.0.0.1:{quota_platform.runtime['ports']['accounting']}/services/accounting/metrics"
    token = (quota_platform.state / "secrets" / "accounting-api-token").read_text().strip()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    body = urllib.request.urlopen(request, timeout=10).read().decode()
    assert 'parhelion_home_used_bytes{user="filler"}' in body and "parhelion_storage_pass_seconds" in body


def test_kill_9_of_accounting_loses_no_usage(quota_platform):
    """Usage while the service is down is still charged: the ledger equals the truth."""

    def accounting_pid() -> int | None:
        for proc in processes_of(quota_platform.state):
            if "platform_tools.services.accounting" in " ".join(proc.cmdline()):
                return proc.pid
        return None

    async def scenario():
        async with HubUser(quota_platform.url, "demo", quota_platform.password()) as user:
            await user.login()
            await user.start_server()
            started = (await user.user_model())["servers"][""]["started"]
            await asyncio.sleep(3)
            old = accounting_pid()
            os.kill(old, signal.SIGKILL)
            killed = time.time()
            deadline = time.monotonic() + 90  # the hub polls its services every 30 s
            while time.monotonic() < deadline and accounting_pid() in (None, old):
                await asyncio.sleep(0.5)
            assert accounting_pid() not in (None, old), "the hub should restart the service"
            restarted = time.time()
            await asyncio.sleep(4)  # a few samples after the restart
            await user.stop_server()
            stopped = time.time()
            return started, stopped, killed, restarted

    started, stopped, killed, restarted = run(scenario())
    time.sleep(3)  # the service closes the lifetime at its next sample
    from datetime import datetime

    ledger = Ledger(f"sqlite:///{quota_platform.state / 'accounting.sqlite'}")
    try:
        servers = [row for row in ledger.lifetimes("demo") if row.kind == "server"]
        row = servers[-1]
        true_start = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
        assert row.started_at == pytest.approx(true_start, abs=1e-3)
        assert row.ended_at is not None
        # last seen within one sampling interval (1 s) of the true stop, across the kill
        assert stopped - 2.5 <= row.last_seen_at <= stopped
        # one lifetime spans the kill and the restart: the outage was charged, not lost or split
        this_server = [r for r in servers if r.started_at == pytest.approx(true_start, abs=1e-3)]
        assert this_server == [row] and row.started_at < killed < restarted < row.last_seen_at
        assert row.last_seen_at - row.started_at >= stopped - true_start - 2.5
    finally:
        ledger.close()


@pytest.mark.browser
def test_spend_page_in_chromium_shows_the_numbers_and_the_chart(quota_platform, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    from platform_tools.accounting.report import user_report
    from platform_tools.config import load_platform
    from tests.platform import headless_chromium

    async def start():
        async with HubUser(quota_platform.url, "demo", quota_platform.password()) as user:
            await user.login()
            await user.start_server(profile="medium")

    run(start())
    time.sleep(3)  # a few samples with the server running
    browser = headless_chromium(tmp_path / "chromium")
    try:
        browser.get(f"{quota_platform.url}/hub/login")
        browser.find_element(By.ID, "username_input").send_keys("demo")
        browser.find_element(By.ID, "password_input").send_keys(quota_platform.password())
        browser.find_element(By.ID, "login_submit").click()
        # as a person does: wait until the hub has answered the login form
        WebDriverWait(browser, 30).until(lambda b: "/hub/login" not in b.current_url)
        browser.get(f"{quota_platform.url}/services/accounting/")  # OAuth redirects, as in a browser
        assert browser.find_element(By.TAG_NAME, "h1").text == "Spend of demo"
        shown = {key: browser.find_element(By.ID, key).text for key in ("spent", "budget", "left", "resets")}
        bars = [
            float(bar.get_attribute("height"))
            for bar in browser.find_elements(By.CSS_SELECTOR, "svg.spend-chart rect.bar")
        ]
        running = browser.find_element(By.ID, "running").text
        rate = browser.find_element(By.ID, "rate").text
        browser.save_screenshot(str(tmp_path / "spend.png"))
    finally:
        browser.quit()

    async def stop():
        async with HubUser(quota_platform.url, "demo", quota_platform.password()) as user:
            await user.login()
            await user.stop_server()

    run(stop())  # leave no server for the next test

    config = load_platform(quota_platform.state / "platform.yaml")
    ledger = Ledger(f"sqlite:///{quota_platform.state / 'accounting.sqlite'}")
    try:
        report = user_report(config, ledger, "demo")
    finally:
        ledger.close()
    assert shown["budget"] == "$25.00"
    assert shown["spent"] == f"${report['budget']['spent_usd']:.2f}"
    assert shown["left"] == f"${report['budget']['left_usd']:.2f}"
    assert shown["resets"].endswith("00:00 UTC")
    assert len(bars) == 14  # two weeks of days
    assert bars[-1] > 0  # today's spend is drawn
    assert "server (default) (medium)" in running and "$0.0720" in running
    assert rate.startswith("$0.07")  # the medium server plus its home volume
    assert (tmp_path / "spend.png").stat().st_size > 10_000


def test_quotas_reload_live_and_a_bad_file_is_rejected(quota_platform):
    """The Ansible quotas play writes the state dir's platform.yaml: no restart needed."""
    live = quota_platform.state / "platform.yaml"
    original = live.read_text()

    def rewrite(text):
        live.write_text(text)
        stat = live.stat()
        os.utime(live, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    async def scenario():
        async with HubUser(quota_platform.url, "demo", quota_platform.password()) as user:
            await user.login()
            if (await user.user_model()).get("servers"):
                await user.stop_server()  # the form shows only while no server runs
            async with user.session.get(f"{quota_platform.url}/hub/spawn/demo") as page:
                before = 'id="spawn_form"' in await page.text()
            # one profile left for the group: the hub stops offering a choice
            rewrite(original.replace("profiles: [small, medium]", "profiles: [small]"))
            async with user.session.get(f"{quota_platform.url}/hub/spawn/demo") as page:
                after = 'id="spawn_form"' in await page.text()
            # no clusters allowed: the gateway refuses at once
            rewrite(original.replace("max_dask_clusters: 2", "max_dask_clusters: 0"))
            await user.start_server()
            kernel = await user.start_kernel()
            try:
                await kernel.execute("from dask_gateway import Gateway\nGateway().new_cluster()", timeout=60)
                refused = None
            except CellError as error:
                refused = error.evalue
            # a bad file: rejected, logged with the field, the last good quota stays
            rewrite(original.replace("max_dask_clusters: 2", "max_dask_clusters: -3"))
            try:
                await kernel.execute("Gateway().new_cluster()", timeout=60)
                still_refused = None
            except CellError as error:
                still_refused = error.evalue
            await kernel.shutdown()
            await user.stop_server()
            return before, after, refused, still_refused

    try:
        before, after, refused, still_refused = run(scenario())
    finally:
        live.write_text(original)
    assert before and not after
    assert refused and "the most your quota allows (0)" in refused
    assert still_refused and "the most your quota allows (0)" in still_refused
    log = (quota_platform.state / "logs" / "dask-gateway.log").read_text()
    assert "keeping the last good one" in log and "groups.researchers.quota.max_dask_clusters" in log
