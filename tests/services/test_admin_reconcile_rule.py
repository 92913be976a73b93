"""The admin page's reconciliation form starts from the rule platform.yaml puts in force
(accounting.reconcile.fold), as `parhelion cost reconcile` does without --fold/--buckets."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from platform_tools.config import load_platform
from platform_tools.services.accounting.handlers import AdminPageHandler
from tests.platform import REPO_ROOT
from tests.services.test_admin_reconcile import render

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("fold", [True, False])
def test_the_form_starts_from_the_rule_in_platform_yaml(fold):
    config = load_platform(REPO_ROOT / "hub_config" / "platform.local.yaml")
    reconcile = config.accounting.reconcile.model_copy(update={"fold": fold})
    config = config.model_copy(
        update={"accounting": config.accounting.model_copy(update={"reconcile": reconcile})}
    )
    handler = SimpleNamespace(get_argument=lambda name, default="": default, config=lambda: config)
    section = asyncio.run(AdminPageHandler.reconciliation(handler))
    assert section["asked"]["fold"] is fold
    assert ('name="fold" value="1" checked' in render(section)) is fold
