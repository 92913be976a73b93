"""`parhelion cost reconcile` as a person runs it, against moto's server over HTTP.

The other reconcile tests serve recorded responses through botocore's Stubber; this one runs
the whole command in its own process, with boto3's real HTTP path, endpoint and credential
lookup (``AWS_ENDPOINT_URL``). moto answers GetCostAndUsage with nothing until fed: first
that (every day without data, said so), then the recorded pages queued through moto's own API
(``/moto-api/static/ce/cost-and-usage-results``), which it hands out one per distinct request.
"""

from __future__ import annotations

import csv
import io
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.accounting.ledger_story import build_ledger
from tests.aws import MotoServer
from tests.platform import platform_config_text, run_parhelion

pytestmark = pytest.mark.integration
DATA = Path(__file__).parents[1] / "accounting" / "data" / "costexplorer"
BUCKET_COLUMNS = (
    "users_usd",
    "placeholders_usd",
    "system_pods_usd",
    "idle_node_capacity_usd",
    "compute_not_metered_usd",
    "storage_usd",
    "network_usd",
    "other_usd",
    "remainder_folded_into_users_usd",
)


def test_moto_empty_then_recorded_pages(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    build_ledger(state / "accounting.sqlite", every_minutes=60)
    config = tmp_path / "platform.yaml"
    config.write_text(platform_config_text().replace("name: parhelion-local", "name: parhelion"))
    moto = MotoServer(tmp_path / "moto.log")
    moto.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=moto.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_CONFIG_FILE=str(tmp_path / "none"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        )
        argv = ["cost", "reconcile", "--since", "2026-11-20", "--until", "2026-11-22"]
        argv += ["--config", str(config), "--state-dir", str(state)]

        empty = run_parhelion(*argv, env=env)
        assert empty.returncode == 0, empty.stderr
        assert "Cost Explorer had no data for any of these days" in empty.stdout
        days = [line.split()[:3] for line in empty.stdout.splitlines() if line.startswith("2026-11-2")]
        assert [d for d in days if d[1:] == ["no", "data"]] == [
            [f"2026-11-{n}", "no", "data"] for n in (20, 21, 22)
        ]

        pages = []
        for name in ("daily_page1", "daily_page2"):
            page = json.loads((DATA / f"{name}.json").read_text())
            page.pop("ResponseMetadata")
            pages.append(page)
        fed = requests.post(
            f"{moto.url}/moto-api/static/ce/cost-and-usage-results", json={"results": pages}, timeout=10
        )
        assert fed.status_code == 201
        answered = run_parhelion(*argv, "--csv", env=env)
    finally:
        moto.stop()
    assert answered.returncode == 0, answered.stderr
    rows = list(csv.DictReader(io.StringIO(answered.stdout)))
    assert [r["bill_usd"] for r in rows] == ["12.31", "11.50", ""]
    for row in rows[:2]:
        assert sum(Decimal(row[c]) for c in BUCKET_COLUMNS) == Decimal(row["bill_usd"])
    assert [r["estimated"] for r in rows] == ["False", "True", "True"]
