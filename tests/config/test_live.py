"""platform.yaml re-read while running: new settings apply, a bad file keeps the last good."""

from __future__ import annotations

import logging
import os

import pytest

from platform_tools.config.live import LiveConfig

pytestmark = pytest.mark.unit


def rewrite(path, text):
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new mtime, always


def test_changes_are_picked_up(tmp_path, example_text):
    path = tmp_path / "platform.yaml"
    path.write_text(example_text)
    live = LiveConfig(path)
    assert live.current().groups["researchers"].quota.max_servers == 1
    rewrite(path, example_text.replace("max_servers: 1", "max_servers: 3"))
    assert live.current().groups["researchers"].quota.max_servers == 3


def test_bad_file_keeps_the_last_good_and_says_why(tmp_path, example_text, caplog):
    path = tmp_path / "platform.yaml"
    path.write_text(example_text)
    live = LiveConfig(path)
    rewrite(path, example_text.replace("usd: 25 ", "usd: -1 "))
    with caplog.at_level(logging.ERROR):
        config = live.current()
    assert config.groups["researchers"].budget.usd == 25
    assert "groups.researchers.budget.usd" in live.rejected
    assert any("keeping the last good one" in r.message and "budget.usd" in r.message for r in caplog.records)
    rewrite(path, example_text.replace("usd: 25 ", "usd: 30 "))
    assert live.current().groups["researchers"].budget.usd == 30 and live.rejected is None


def test_a_missing_file_keeps_the_last_good(tmp_path, example_text):
    path = tmp_path / "platform.yaml"
    path.write_text(example_text)
    live = LiveConfig(path)
    path.unlink()
    assert live.current().name == "parhelion-local"


def test_a_configured_path_is_followed_when_it_changes(tmp_path, example_text, caplog):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(example_text)
    where = [first]
    live = LiveConfig(lambda: where[0])
    where[0] = second  # configured elsewhere, not written yet: the last good stays, said once
    with caplog.at_level(logging.ERROR):
        assert live.current().name == "parhelion-local"
        assert live.current().name == "parhelion-local"
    assert live.rejected == f"{second}: no such file"
    assert sum("no such file" in r.message for r in caplog.records) == 1
    second.write_text(example_text.replace("name: parhelion-local", "name: moved", 1))
    assert live.current().name == "moved" and live.path == second and live.rejected is None
