"""parhelion.platform.aws_budget through ansible-playbook against moto's server: create,
no-op, update in place, check mode, delete. Each state is read back with boto3."""

from __future__ import annotations

import boto3
import pytest

from tests.ansible.runner import run_playbook
from tests.aws import MotoServer

pytestmark = pytest.mark.ansible
PLAYBOOK = "../tests/ansible/budget.yml"
ALERTS = [
    {"threshold": 80, "emails": ["team@example.org"]},
    {"threshold": 100, "notification_type": "FORECASTED", "emails": ["team@example.org"]},
]


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def budgets(moto):
    return boto3.client(
        "budgets",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def described(moto) -> tuple[dict | None, dict]:
    client = budgets(moto)
    try:
        budget = client.describe_budget(AccountId="123456789012", BudgetName="parhelion-monthly")["Budget"]
    except client.exceptions.NotFoundException:
        return None, {}
    alerts = {}
    for n in client.describe_notifications_for_budget(
        AccountId="123456789012", BudgetName="parhelion-monthly"
    )["Notifications"]:
        subscribers = client.describe_subscribers_for_notification(
            AccountId="123456789012", BudgetName="parhelion-monthly", Notification=n
        )["Subscribers"]
        alerts[(n["NotificationType"], float(n["Threshold"]))] = sorted(s["Address"] for s in subscribers)
    return budget, alerts


def test_create_noop_update_check_delete(moto, tmp_path):
    def play(check=False, **variables):
        run = run_playbook(
            PLAYBOOK, tmp_path / "home", extra_vars={"moto_url": moto.url, **variables}, check=check
        )
        assert run.returncode == 0, run.failures() or run.stderr or run.report
        return run

    filters = {"TagKeyValue": ["user:parhelion.dev/cluster$parhelion"]}
    assert play(budget_amount=2000, budget_filters=filters, budget_notifications=ALERTS).changed == 1
    budget, alerts = described(moto)
    assert budget["BudgetLimit"]["Amount"] in ("2000", "2000.0") and budget["TimeUnit"] == "MONTHLY"
    assert budget["CostFilters"] == filters
    assert alerts == {("ACTUAL", 80.0): ["team@example.org"], ("FORECASTED", 100.0): ["team@example.org"]}

    assert play(budget_amount=2000.0, budget_filters=filters, budget_notifications=ALERTS).changed == 0

    # check mode reports the change and makes none
    more = [
        dict(ALERTS[0], emails=["team@example.org", "dean@example.org"]),
        {"threshold": 50, "emails": ["x@y.org"]},
    ]
    checked = play(check=True, budget_amount=2500, budget_filters=filters, budget_notifications=more)
    assert checked.changed == 1 and described(moto) == (budget, alerts)

    # update in place: the limit, one alert's subscribers, one alert replaced by another
    assert play(budget_amount=2500, budget_filters=filters, budget_notifications=more).changed == 1
    budget, alerts = described(moto)
    assert budget["BudgetLimit"]["Amount"] == "2500"
    assert alerts == {
        ("ACTUAL", 80.0): ["dean@example.org", "team@example.org"],
        ("ACTUAL", 50.0): ["x@y.org"],
    }
    assert play(budget_amount=2500, budget_filters=filters, budget_notifications=more).changed == 0

    assert play(check=True, budget_state="absent").changed == 1 and described(moto)[0] is not None
    assert play(budget_state="absent").changed == 1 and described(moto)[0] is None
    assert play(budget_state="absent").changed == 0


def test_a_missing_amount_is_refused_naming_it(moto, tmp_path):
    run = run_playbook(PLAYBOOK, tmp_path / "home", extra_vars={"moto_url": moto.url})
    assert run.returncode != 0
    assert any("state is present but all of the following are missing: amount" in f for f in run.failures())
