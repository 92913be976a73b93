"""A price before you press run: the estimate from a pilot against the real run, the budget's
tightest scope, and the refusal of a job that would cost more than is left."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from platform_tools.burst import BurstBudgetError, burst_map, burst_plan
from platform_tools.burst.price import BurstPlan
from platform_tools.clients.spend import BudgetLeft, budget_left, budget_left_from_report
from platform_tools.contract.environment import ACCOUNTING_ADDRESS_VARIABLE, NODE_VARIABLE
from platform_tools.pricing.catalog import Node
from tests.burst.conftest import COUNT

NODE = Node("m6i.xlarge", "us-east-1", "on-demand", vcpu=4, memory_gib=16, price_per_hour=0.192)
PER_FILE = 0.1  # seconds a file costs the function below, beside fetching and decoding it


def steady(image, header):
    """A function with a known cost per file, so the estimate has something to be right about."""
    time.sleep(PER_FILE)
    return float(image.mean())


@pytest.fixture
def priced(monkeypatch):
    monkeypatch.setenv(NODE_VARIABLE, json.dumps(dataclasses.asdict(NODE)))


def report(own_left=None, groups=()):
    return {
        "budget": None if own_left is None else {"usd": 25.0, "left_usd": own_left, "period": "month"},
        "group_totals": [{"group": g, "usd": usd, "spent_usd": spent} for g, usd, spent in groups],
    }


@pytest.mark.unit
def test_the_tightest_budget_is_what_is_left():
    assert budget_left_from_report(report(20.0)).describe() == "$20.00 left of your $25.00 month budget"
    tight = budget_left_from_report(report(20.0, [("class-a", 100.0, 99.5), ("lab", 500.0, 1.0)]))
    assert (tight.usd, tight.scope) == (0.5, "group class-a's $100.00 budget")
    overspent = budget_left_from_report(report(None, [("class-a", 10.0, 12.0)]))
    assert overspent.usd == 0.0  # a group over its cap leaves nothing, not a negative credit
    assert budget_left_from_report(report()).describe() == "no budget caps your spend"


@pytest.mark.unit
def test_without_an_accounting_service_the_budget_is_unknown_not_an_error():
    unknown = budget_left({"JUPYTERHUB_USER": "ana", "JUPYTERHUB_API_TOKEN": "t"})
    assert not unknown.known and ACCOUNTING_ADDRESS_VARIABLE in unknown.describe()
    closed = budget_left(
        {
            ACCOUNTING_ADDRESS_VARIABLE: "http://127.0.0.1:9",
            "JUPYTERHUB_USER": "ana",
            "JUPYTERHUB_API_TOKEN": "t",
        },
        timeout=2,
    )
    assert (
        not closed.known and "did not answer at http://127.0.0.1:9/services/accounting/" in closed.describe()
    )


@pytest.mark.unit
def test_a_plan_over_budget_is_refused_with_its_sentence_unless_accepted():
    plan = BurstPlan(
        files=129_758,
        bytes=1_800_000_000_000,
        bytes_measured=True,
        workers=50,
        threads=200,
        seconds=1500.0,
        core_seconds_per_file=2.3,
        sample=400,
        price_per_hour=9.6,
        node="m6i.xlarge (spot, us-east-1)",
        budget=BudgetLeft(3.0, "your $25.00 month budget"),
    )
    text = str(plan)
    assert text.startswith(
        "Plan: 129,758 files, 1.8 TB to read; about 25 min 0 s on 50 workers (200 threads)"
    )
    assert "about $4.0000 by the cost rule on m6i.xlarge (spot, us-east-1)" in text
    assert text.endswith("$3.00 left of your $25.00 month budget.")
    with pytest.raises(
        BurstBudgetError, match=r"would cost about \$4.0000, more than is left.*accept_cost=True"
    ):
        plan.check()
    plan.check(accept_cost=True)
    assert dataclasses.replace(plan, budget=BudgetLeft(None, "no budget")).fits_budget
    assert dataclasses.replace(plan, price_per_hour=None).fits_budget  # no price: nothing to refuse


@pytest.mark.integration
@pytest.mark.serial  # the pilot's rate and the run's must be measured on the same quiet machine
def test_the_estimate_is_within_30_percent_of_the_run(aia_bucket, local_client, s3_server, priced):
    files = aia_bucket.query("aia_94")
    options = s3_server.storage_options
    plan = burst_plan(files, steady, client=local_client, storage_options=options)
    assert (plan.files, plan.workers, plan.threads, plan.sample) == (
        COUNT,
        2,
        2,
        3,
    )  # a tenth, one a thread at least
    assert plan.bytes == int(files["filesize"].sum()) and plan.bytes_measured
    run = burst_map(steady, files, client=local_client, storage_options=options, plan=plan, progress=False)
    assert run.failures.empty and list(run.results["datakey"]) == list(files["datakey"])
    actual = run.report.seconds
    assert abs(plan.seconds - actual) / actual <= 0.30, (plan.seconds, actual)
    assert plan.cost_usd == pytest.approx(2 * 0.25 * 0.192 * plan.seconds / 3600)  # 1 of 4 vCPUs each
    assert str(run.report).startswith(str(plan) + "\n")  # the plan heads the report
    # planned for 8 workers of this size: four times the cores, a quarter of the work's time
    bigger = burst_plan(files, steady, client=local_client, storage_options=options, workers=8)
    work = (COUNT - bigger.sample) * bigger.core_seconds_per_file
    assert bigger.threads == 8 and bigger.seconds - bigger.pilot_seconds - bigger.overhead_seconds == (
        pytest.approx(work / 8, rel=0.25)  # and the tail: half of a one-file task
    )
    assert bigger.cost_usd == pytest.approx(8 * 0.25 * 0.192 * bigger.seconds / 3600)


@pytest.mark.integration
def test_a_burst_over_budget_is_refused_and_runs_when_accepted(aia_bucket, local_client, s3_server, priced):
    files = aia_bucket.query("aia_94").head(8)
    options = s3_server.storage_options
    broke = BudgetLeft(1e-7, "your $25.00 month budget")
    plan = burst_plan(files, steady, client=local_client, storage_options=options, budget=broke)
    with pytest.raises(BurstBudgetError) as refused:
        burst_map(steady, files, client=local_client, storage_options=options, plan=plan, progress=False)
    assert str(refused.value).startswith(str(plan))
    run = burst_map(
        steady,
        files,
        client=local_client,
        storage_options=options,
        plan=plan,
        accept_cost=True,
        progress=False,
    )
    # every file exactly once; the pilot's four are kept, not fetched again
    assert sorted(run.results["datakey"]) == sorted(files["datakey"]) and run.failures.empty
    assert run.report.bytes == int(files["filesize"].sum())


@pytest.mark.unit
def test_the_token_is_never_sent_where_a_redirect_points():
    """urllib re-sends the Authorization header to wherever a redirect points; the budget
    query refuses redirects (and an answer that is not the user's own report)."""
    import http.server
    import threading

    seen = []

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            return None

    elsewhere = http.server.HTTPServer(("127.0.0.1", 0), Elsewhere)

    class Redirecting(Elsewhere):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{elsewhere.server_port}/steal")
            self.end_headers()

    redirecting = http.server.HTTPServer(("127.0.0.1", 0), Redirecting)
    servers = [elsewhere, redirecting]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        environ = {"JUPYTERHUB_USER": "ana", "JUPYTERHUB_API_TOKEN": "secret"}
        moved = budget_left(
            {**environ, ACCOUNTING_ADDRESS_VARIABLE: f"http://127.0.0.1:{redirecting.server_port}"}
        )
        assert not moved.known and "HTTP 302" in moved.describe() and seen == []
        other = budget_left(
            {**environ, ACCOUNTING_ADDRESS_VARIABLE: f"http://127.0.0.1:{elsewhere.server_port}"}
        )
        assert not other.known and "is not ana's spend report" in other.describe()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def failing(image, header):
    raise KeyError("EXPTIM")  # a typo: every file fails the same way


@pytest.mark.integration
def test_a_function_that_fails_every_pilot_file_stops_before_the_run(aia_bucket, local_client, s3_server):
    files = aia_bucket.query("aia_94")
    with pytest.raises(RuntimeError, match=r"every one of the pilot's \d+ files failed.*KeyError: 'EXPTIM'"):
        burst_map(
            failing, files, client=local_client, storage_options=s3_server.storage_options, progress=False
        )


@pytest.mark.integration
def test_a_plan_for_another_function_gives_none_of_its_values(aia_bucket, local_client, s3_server):
    files = aia_bucket.query("aia_94").head(8)
    options = s3_server.storage_options
    plan = burst_plan(files, steady, client=local_client, storage_options=options)
    run = burst_map(
        lambda image, header: -1.0,
        files,
        client=local_client,
        storage_options=options,
        plan=plan,
        progress=False,
    )
    assert run.results["value"].tolist() == [-1.0] * 8


@pytest.mark.integration
def test_a_job_the_pilot_finished_is_not_refused(aia_bucket, local_client, s3_server, priced):
    files = aia_bucket.query("aia_94").head(2)  # one file a thread: the pilot is the whole job
    options = s3_server.storage_options
    plan = burst_plan(
        files, steady, client=local_client, storage_options=options, budget=BudgetLeft(1e-9, "x")
    )
    assert plan.sample == 2 and not plan.fits_budget
    run = burst_map(steady, files, client=local_client, storage_options=options, plan=plan, progress=False)
    assert len(run.results) == 2  # its money is spent and its results are the run's
