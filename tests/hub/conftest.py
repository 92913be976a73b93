"""What the hub's browser tests share: one headless Chromium per module."""

from __future__ import annotations

import pytest

from tests.platform import headless_chromium


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = headless_chromium(tmp_path_factory.mktemp("chromium"))
    try:
        yield chromium
    finally:
        chromium.quit()
