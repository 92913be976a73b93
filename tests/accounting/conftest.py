"""Fixtures shared by the accounting tests."""

from __future__ import annotations

import pytest

from platform_tools.ledger.store import Ledger


@pytest.fixture
def ledger(tmp_path):
    """A real SQLite ledger, migrated, closed afterwards."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.migrate()
    yield ledger
    ledger.close()
