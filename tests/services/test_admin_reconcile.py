"""The admin page's reconciliation section: the service's Reconciler (asked for, kept an hour,
the ledger read-only) and the section as tornado renders admin.html, on the recorded bill
(botocore Stubber, see tests/accounting/test_costexplorer.py) and the two days' ledger."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from tornado.template import Loader

import platform_tools.services.accounting as service
from platform_tools.accounting.reconcile import BUCKETS
from platform_tools.config import load_platform
from platform_tools.services.accounting.reconciling import Reconciler
from tests.accounting.test_costexplorer import recorded_bill, story, stubbed  # noqa: F401 (fixture)

pytestmark = pytest.mark.unit

TEMPLATES = Path(service.__file__).parent / "templates"


def render(bill: dict) -> str:
    page = (
        Loader(str(TEMPLATES))
        .load("admin.html")
        .generate(
            rows=[],
            groups={},
            prefix="/services/accounting/",
            sort="user",
            bill=bill,
            BUCKETS=BUCKETS,
            is_admin=True,
        )
    )
    return page.decode()


def test_the_section_reconciles_when_asked_and_keeps_the_answer_an_hour(story):  # noqa: F811
    config = load_platform(story / "platform.yaml")
    clock = [1000.0]
    explorers = []

    def explorer_factory(_config):
        explorer, stubber, _ = stubbed()
        recorded_bill(stubber)
        stubber.activate()
        explorers.append(explorer)
        return explorer

    reconciler = Reconciler(
        f"sqlite:///{story / 'state' / 'accounting.sqlite'}", explorer_factory, clock=lambda: clock[0]
    )
    first, last = date(2026, 11, 20), date(2026, 11, 22)
    answer = reconciler.reconcile(config, first, last, False, "researchers")
    assert answer.error is None and len(explorers) == 1
    assert reconciler.reconcile(config, first, last, False, "researchers") is answer  # kept
    clock[0] += 3601
    assert reconciler.reconcile(config, first, last, False, "researchers") is not answer  # asked again
    assert len(explorers) == 2
    with pytest.raises(ValueError, match="until 2026-11-19 is before since 2026-11-20"):
        reconciler.reconcile(config, first, date(2026, 11, 19), False, None)
    reconciler.close()

    asked = {"since": "2026-11-20", "until": "2026-11-22", "group": "researchers", "fold": False}
    page = render({"asked": asked, "result": answer.result, "error": None})
    assert "Rule in force: <strong>buckets: users pay what the ledger charged them" in page
    assert "<th>idle node capacity</th>" in page and "<th>group share</th>" in page
    assert "<td>2026-11-22</td> <td>no data</td>" in " ".join(page.split())
    day = answer.result.days[0]
    assert f"<td>${day.bill_cents / 100:.2f}</td>" in page
    assert "no Cost Explorer data" in page  # the day without data, in the notes


def test_the_section_says_why_it_could_not(story):  # noqa: F811
    config = load_platform(story / "platform.yaml")

    def denied(_config):
        explorer, stubber, _ = stubbed()
        stubber.add_client_error("get_cost_and_usage", "AccessDeniedException", "not authorized", 400)
        stubber.activate()
        return explorer

    reconciler = Reconciler(f"sqlite:///{story / 'state' / 'accounting.sqlite'}", denied)
    answer = reconciler.reconcile(config, date(2026, 11, 20), date(2026, 11, 21), True, None)
    reconciler.close()
    assert answer.result is None and "Cost Explorer denied ce:GetCostAndUsage" in answer.error
    page = render(
        {
            "asked": {"since": "2026-11-20", "until": "", "group": "", "fold": True},
            "result": None,
            "error": answer.error,
        }
    )
    assert (
        '<div class="alert alert-warning mt-2" id="bill-error">Cost Explorer denied ce:GetCostAndUsage'
        in page
    )
    assert 'name="fold" value="1" checked' in page
    # not asked: the form only
    assert "bill-days" not in render(
        {"asked": {"since": "", "until": "", "group": "", "fold": False}, "result": None, "error": None}
    )


def test_reconciliations_waiting_on_cost_explorer_leave_the_services_threads_free(tmp_path):
    """A dozen admin requests while Cost Explorer is slow (throttled: backoff) must not take
    the default executor's threads, in which the meter, the enforcer and spawn checks run."""
    import asyncio
    import time

    from platform_tools.clients.costexplorer import CostExplorerError
    from tests.platform import REPO_ROOT as ROOT

    config = load_platform(ROOT / "hub_config" / "platform.local.yaml")
    (tmp_path / "ledger.sqlite").write_bytes(b"")

    def slow_explorer(_config):
        time.sleep(0.3)  # Cost Explorer's backoff, as a blocking call
        raise CostExplorerError("throttled")

    reconciler = Reconciler(f"sqlite:///{tmp_path / 'ledger.sqlite'}", slow_explorer)

    async def scene() -> float:
        asked = [
            asyncio.ensure_future(
                reconciler.run(config, date(2026, 11, day), date(2026, 11, 28), False, None)
            )
            for day in range(1, 13)
        ]
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await asyncio.to_thread(lambda: None)  # the meter's sample, the enforcer's pass
        waited = time.monotonic() - started
        answers = await asyncio.gather(*asked)
        assert all(answer.error == "throttled" for answer in answers)
        return waited

    try:
        assert asyncio.run(scene()) < 0.25
    finally:
        reconciler.close()
