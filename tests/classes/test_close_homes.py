"""A local home closed by `parhelion class close`, interrupted at each step and run again:
the archive always holds the whole home, and is never replaced by what a half-finished
deletion left."""

from __future__ import annotations

import tarfile

import pytest

from platform_tools.classes.lifecycle import _close_home

pytestmark = pytest.mark.unit


def home_with_work(homes):
    home = homes / "student001"
    (home / "notebooks").mkdir(parents=True)
    (home / "notebooks" / "a.ipynb").write_text("{}")
    (home / "results.txt").write_text("my work")
    return home


def archived_names(archive) -> set[str]:
    with tarfile.open(archive) as kept:
        return set(kept.getnames())


WHOLE = {"student001", "student001/notebooks", "student001/notebooks/a.ipynb", "student001/results.txt"}


def test_interrupted_after_moving_the_home_aside(tmp_path):
    homes, archives = tmp_path / "homes", tmp_path / "archives"
    home = home_with_work(homes)
    home.replace(homes / ".student001.closing")  # the first run stopped right after its rename
    (archives).mkdir()
    (archives / ".student001.tar.gz.partial").write_bytes(b"half an archive")
    assert _close_home(home, "archive", archives) == f"archived {archives / 'student001.tar.gz'}"
    assert archived_names(archives / "student001.tar.gz") == WHOLE
    assert sorted(p.name for p in homes.iterdir()) == []


def test_interrupted_while_deleting_an_archived_home(tmp_path):
    homes, archives = tmp_path / "homes", tmp_path / "archives"
    home = home_with_work(homes)
    assert _close_home(home, "archive", archives).startswith("archived")
    # as if the first run had archived, marked done, then stopped half-way through deleting
    done = homes / ".student001.closed"
    (done / "notebooks").mkdir(parents=True)
    assert _close_home(home, "archive", archives).startswith("archived")
    assert archived_names(archives / "student001.tar.gz") == WHOLE  # not the half-deleted copy
    assert not done.exists() and not home.exists()
    assert _close_home(home, "archive", archives) == "none"  # and once more: nothing to do
