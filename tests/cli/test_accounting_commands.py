"""`parhelion quota show` and `parhelion cost report` on a real (SQLite) ledger."""

from __future__ import annotations

import csv
import io
import time

import pytest

from platform_tools.ledger.store import Ledger, Observation
from tests.platform import platform_config_text, run_parhelion

pytestmark = pytest.mark.unit


parhelion = run_parhelion


@pytest.fixture
def deployment(tmp_path):
    config = tmp_path / "platform.yaml"
    config.write_text(platform_config_text().replace("  users: [demo]", "  users: [demo, eve]"))
    state = tmp_path / "state"
    state.mkdir()
    ledger = Ledger(f"sqlite:///{state / 'accounting.sqlite'}")
    ledger.migrate()
    now = time.time()
    ledger.record_sample(
        now,
        [
            Observation("server:demo::1", "demo", "server", now - 3600, 0.072),  # $0.072
            Observation("server:eve::1", "eve", "server", now - 7200, 0.024),  # $0.048
        ],
    )
    ledger.close()
    return config, state


def test_quota_show_resolves_and_shows_spend(deployment):
    config, state = deployment
    result = parhelion("quota", "show", "demo", "--config", str(config), "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    assert "groups    researchers" in result.stdout
    assert "max_dask_cores        4" in result.stdout
    assert "budget    $25 per month (from group:researchers)" in result.stdout
    assert "spent     $0.0720 of $25 (0.3%)" in result.stdout


def test_quota_show_unknown_user(deployment):
    config, state = deployment
    result = parhelion("quota", "show", "zed", "--config", str(config), "--state-dir", str(state))
    assert result.returncode == 1 and "'zed' is not a user of" in result.stderr


def test_cost_report_table_csv_and_group(deployment):
    config, state = deployment
    base = ["--config", str(config), "--state-dir", str(state)]
    table = parhelion("cost", "report", *base)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[-1].split() == ["total", "0.1200"]
    rows = list(csv.DictReader(io.StringIO(parhelion("cost", "report", "--csv", *base).stdout)))
    assert {row["user"]: float(row["spent_usd"]) for row in rows} == pytest.approx(
        {"admin": 0.0, "demo": 0.072, "eve": 0.048}
    )
    group = list(
        csv.DictReader(
            io.StringIO(parhelion("cost", "report", "--csv", "--group", "researchers", *base).stdout)
        )
    )
    assert [row["user"] for row in group] == ["demo"]
    since = list(
        csv.DictReader(
            io.StringIO(parhelion("cost", "report", "--csv", "--since", "2000-01-01", *base).stdout)
        )
    )
    assert {row["user"]: float(row["spent_usd"]) for row in since}["eve"] == pytest.approx(0.048)


def test_cost_report_bad_input(deployment):
    config, state = deployment
    base = ["--config", str(config), "--state-dir", str(state)]
    assert "unknown group 'nope'" in parhelion("cost", "report", "--group", "nope", *base).stderr
    assert "is not a date" in parhelion("cost", "report", "--since", "soon", *base).stderr


def test_cost_reconcile_says_why_it_cannot(deployment, tmp_path):
    """As a person runs it: a bad date, and no AWS credentials, each one sentence (the answers
    of Cost Explorer itself: tests/accounting/test_costexplorer.py); the ledger untouched."""
    import os

    config, state = deployment
    base = ["--config", str(config), "--state-dir", str(state)]
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    bad = parhelion("cost", "reconcile", "--since", "2026-13-01", *base)
    assert bad.returncode == 2 and bad.stderr.strip() == "--since '2026-13-01' is not a date (YYYY-MM-DD)"
    nowhere = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    nowhere.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    denied = parhelion(
        "cost", "reconcile", "--since", "2026-11-20", "--until", "2026-11-21", *base, env=nowhere
    )
    assert denied.returncode == 1, denied.stdout
    assert denied.stderr.startswith(
        "cannot reconcile: no AWS credentials: Cost Explorer needs the credentials"
    )
    assert "ce:GetCostAndUsage" in denied.stderr and "Traceback" not in denied.stderr
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before
