"""The storage quota on one machine: how a home is measured (real files on this disk:
sparse, hard-linked, linked in loops, unreadable, vanishing, with a file system mounted
inside), and the rule the enforcer and the spawn check apply to the measurement."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from platform_tools.accounting import homesize
from platform_tools.accounting.checks import check_spawn
from platform_tools.accounting.enforcer import Actions, Enforcer
from platform_tools.accounting.homesize import measure_home
from platform_tools.accounting.storage import StorageGauge, local_homes
from platform_tools.config import parse_platform
from platform_tools.config.loader import ConfigError
from tests.platform import platform_config_text

pytestmark = pytest.mark.unit

MIB = 2**20
QUOTA_GIB = 0.01  # 10.24 MiB
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def write(path: Path, mib: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(int(mib * MIB)))


# ---------------------------------------------------------------- measurement


def test_a_sparse_file_counts_its_blocks_not_its_length(tmp_path):
    home = tmp_path / "ann"
    home.mkdir()
    with (home / "sparse.img").open("wb") as handle:
        handle.truncate(50 * 2**30)  # 50 GiB long, no block written
        handle.seek(10 * 2**30)
        handle.write(b"x" * 4096)
    write(home / "real.bin", 2)
    size = measure_home(home)
    assert os.stat(home / "sparse.img").st_size == 50 * 2**30
    assert 2 * MIB <= size.used_bytes < 3 * MIB  # the 2 MiB written and a few blocks
    assert size.files == 2 and size.complete


def test_hard_links_count_once(tmp_path):
    home = tmp_path / "ann"
    write(home / "data.bin", 3)
    (home / "copies").mkdir()
    for n in range(4):
        os.link(home / "data.bin", home / "copies" / f"link{n}.bin")
    size = measure_home(home)
    assert 3 * MIB <= size.used_bytes < 3.5 * MIB
    assert size.files == 2  # the file once, and the folder


def test_symbolic_links_are_not_followed_even_in_a_loop(tmp_path):
    outside = tmp_path / "outside"
    write(outside / "big.bin", 4)  # another user's files, say
    home = tmp_path / "ann"
    write(home / "mine.bin", 1)
    (home / "loop").mkdir()
    (home / "loop" / "back").symlink_to(home)  # a loop through the home itself
    (home / "a").symlink_to(home / "b")
    (home / "b").symlink_to(home / "a")  # a loop of links
    (home / "theirs").symlink_to(outside)
    (home / "root").symlink_to("/")
    size = measure_home(home)
    assert 1 * MIB <= size.used_bytes < 1.5 * MIB
    assert size.files == 7 and size.complete


def test_another_file_system_inside_the_home_is_not_counted(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting needs root (tests run as root in CI)")
    home = tmp_path / "ann"
    write(home / "mine.bin", 1)
    scratch = home / "scratch"
    scratch.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(scratch)], check=True)
    try:
        write(scratch / "big.bin", 8)
        size = measure_home(home)
    finally:
        subprocess.run(["umount", str(scratch)], check=True)
    assert 1 * MIB <= size.used_bytes < 1.5 * MIB


MEASURE_AS_NOBODY = """
import json, os, sys
from platform_tools.accounting.homesize import measure_home
os.setgid(65534); os.setuid(65534)
size = measure_home(sys.argv[1])
print(json.dumps({"used": size.used_bytes, "unreadable": size.unreadable, "complete": size.complete}))
"""


def test_a_folder_the_service_cannot_read_makes_the_figure_a_lower_bound():
    """As root the service reads everything; a service account that may not enter a folder
    (here: nobody, against a 0700 folder of root's) counts what it can, and says so."""
    root = Path(tempfile.mkdtemp(prefix="parhelion-storage-"))  # pytest's folders are 0700
    try:
        _measure_a_door(root)
    finally:
        shutil.rmtree(root)


def _measure_a_door(root: Path) -> None:
    home = root / "ann"
    write(home / "mine.bin", 1)
    write(home / "private" / "secret.bin", 5)
    os.chmod(home / "private", 0o700)
    for folder in (root, home):
        os.chmod(folder, 0o755)
    if os.geteuid() == 0:
        answer = subprocess.run(
            [sys.executable, "-c", MEASURE_AS_NOBODY, str(home)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        seen = json.loads(answer.stdout)
    else:
        os.chmod(home / "private", 0)
        size = measure_home(home)
        seen = {"used": size.used_bytes, "unreadable": size.unreadable, "complete": size.complete}
    assert seen["unreadable"] == 1 and not seen["complete"]
    assert 1 * MIB <= seen["used"] < 1.5 * MIB  # the readable MiB, not the 5 behind the door


@pytest.mark.parametrize("swapped", ["a", "a/b"], ids=["the folder", "a folder above it"])
def test_a_folder_swapped_for_a_link_mid_walk_is_not_followed(tmp_path, monkeypatch, swapped):
    """The student renames a folder the walk (root) has listed but not entered yet and puts a
    link to another home in its place: the walk must not count (nor tell) that home, nor
    walk the whole disk when the link is to /. Either the listed folder itself or a folder on
    the way to a deeper one is swapped."""
    home, other = tmp_path / "ann", tmp_path / "bob"
    write(home / "a" / "b" / "c" / "small.bin", 0.1)
    write(other / "b" / "c" / "big.bin", 5)
    write(other / "c" / "big.bin", 5)
    real_entries = homesize._entries
    listings = []

    def list_then_swap(iterator):
        yield from real_entries(iterator)
        listings.append(1)
        if len(listings) == (1 if swapped == "a" else 2):  # the home, or the home and a/
            (home / "a").rename(home / "a.moved")
            (home / "a").symlink_to(other / "b" if swapped == "a" else other)

    monkeypatch.setattr(homesize, "_entries", list_then_swap)
    size = measure_home(home)
    monkeypatch.undo()
    assert size is not None and size.used_bytes < 1 * MIB
    assert size.unreadable >= 1  # a lower bound, said so


def test_a_home_that_vanishes_mid_walk(tmp_path, monkeypatch):
    """The home is deleted (a class closed) while its folders are listed: the walk ends
    with what it saw, and the next one finds no home (None: not known, refuses nothing)."""
    home = tmp_path / "ann"
    for n in range(5):
        write(home / f"part{n}" / "data.bin", 0.25)
    real_open_folder = homesize._open_folder
    listed = []

    def open_then_delete(path, device, inode):
        listed.append(path)
        if len(listed) == 3:
            shutil.rmtree(home)
        return real_open_folder(path, device, inode)

    monkeypatch.setattr(homesize, "_open_folder", open_then_delete)
    size = measure_home(home)
    monkeypatch.undo()
    assert size is not None and 0.25 * MIB <= size.used_bytes < 0.5 * MIB  # one folder's file
    assert len(listed) == 6  # the home and its five folders were each tried; three were gone
    assert measure_home(home) is None
    (tmp_path / "file").write_text("x")
    assert measure_home(tmp_path / "file") is None  # a home that is not a folder


# ---------------------------------------------------------------- the rule


def make_config(marks: str = "[80, 100]"):
    text = platform_config_text(
        **{
            "      storage_gib: 10\n": f"      storage_gib: {QUOTA_GIB}\n",
            "  sample_interval_seconds: 15\n": (
                f"  sample_interval_seconds: 15\n  storage_warn_at_percent: {marks}\n"
            ),
        }
    )
    return parse_platform(text)


class Stops:
    """The enforcer's actions: storage must never stop anything."""

    def __init__(self):
        self.called: list[str] = []

    def actions(self) -> Actions:
        async def stop(user):
            self.called.append(user)
            return ["something"]

        return Actions(stop, stop)


def storage_events(ledger, user="demo"):
    return [(e.action, e.rule, e.message) for e in ledger.events(user) if e.rule.startswith("storage")]


def test_thresholds_are_told_once_per_crossing_and_nothing_is_stopped(tmp_path, ledger):
    config = make_config()
    homes = tmp_path / "homes"
    gauge = StorageGauge(lambda c: local_homes(c, homes, c.local_spawner), lambda: config)
    # simple spawner: the state directory's homes
    assert local_homes(config, homes, config.local_spawner)["demo"] == homes / "demo"
    stops = Stops()
    enforcer = Enforcer(ledger, stops.actions(), lambda: config, gauge)

    def after(mib: float) -> list[tuple[str, str, str]]:
        shutil.rmtree(homes / "demo", ignore_errors=True)
        write(homes / "demo" / "data.bin", mib)
        gauge.measure_all()
        asyncio.run(enforcer.run_once(NOW))
        return [event[:2] for event in storage_events(ledger)]

    assert after(5) == []  # 49%
    assert after(8.5) == [("warn", "storage-80%")]  # 83%
    assert after(8.6) == [("warn", "storage-80%")]  # still over: told once
    assert after(7.9) == [("warn", "storage-80%")]  # 77%: under, within the 5 points
    assert after(8.5) == [("warn", "storage-80%")]  # not re-armed, not told again
    assert after(7) == [("warn", "storage-80%")]  # 68%: re-armed
    assert after(12) == [("warn", "storage-80%"), ("warn", "storage-80%"), ("warn", "storage-100%")]
    assert after(12.5) == [("warn", "storage-80%"), ("warn", "storage-80%"), ("warn", "storage-100%")]
    assert stops.called == []
    message = storage_events(ledger)[-1][2]
    assert message.startswith("Your home uses 0.0117 GiB of your 0.01 GiB storage quota (117%)")
    assert "new servers are refused until it is under" in message
    assert "The server you run keeps running: delete files there before you stop it" in message
    assert "ask the admins of this machine (admin@localhost)" in message


def test_a_new_server_is_refused_over_the_quota_and_allowed_once_files_are_deleted(tmp_path, ledger):
    config = make_config()
    homes = tmp_path / "homes"
    gauge = StorageGauge(lambda c: local_homes(c, homes, c.local_spawner), lambda: config)

    def verdict():
        return check_spawn(config, ledger, "demo", "small", NOW, None, gauge.for_check(config, "demo"))

    assert verdict().allowed  # no home yet: nothing known, nothing refused
    write(homes / "demo" / "data.bin", 11)
    assert verdict().allowed  # not measured yet (a service just started): not refused
    gauge.measure_all()
    refused = verdict()
    assert (refused.allowed, refused.rule) == (False, "storage")
    assert refused.message == (
        "No new server: your home uses 0.0107 GiB of your 0.01 GiB storage quota (107%). Delete files "
        "to get under it (from a terminal on a server you still run), or ask the admins of this "
        "machine (admin@localhost) to delete some or raise your quota; then start again."
    )
    (homes / "demo" / "data.bin").unlink()  # deleted since the last pass: the check measures again
    assert verdict().allowed
    write(homes / "demo" / "data.bin", 11)
    gauge.measure_all()
    assert not verdict().allowed
    shutil.rmtree(homes / "demo")  # the home is gone: not known, not refused
    assert verdict().allowed


def test_storage_thresholds_must_increase():
    with pytest.raises(
        ConfigError, match=r"accounting.storage_warn_at_percent: storage_warn_at_percent must increase"
    ):
        make_config("[100, 80]")
