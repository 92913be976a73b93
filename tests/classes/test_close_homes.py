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
    assert (
        _close_home(home, "student001", "archive", archives) == f"archived {archives / 'student001.tar.gz'}"
    )
    assert archived_names(archives / "student001.tar.gz") == WHOLE
    assert sorted(p.name for p in homes.iterdir()) == []


def test_interrupted_while_deleting_an_archived_home(tmp_path):
    homes, archives = tmp_path / "homes", tmp_path / "archives"
    home = home_with_work(homes)
    assert _close_home(home, "student001", "archive", archives).startswith("archived")
    # as if the first run had archived, marked done, then stopped half-way through deleting
    done = homes / ".student001.closed"
    (done / "notebooks").mkdir(parents=True)
    assert _close_home(home, "student001", "archive", archives).startswith("archived")
    assert archived_names(archives / "student001.tar.gz") == WHOLE  # not the half-deleted copy
    assert not done.exists() and not home.exists()
    assert _close_home(home, "student001", "archive", archives) == "none"  # and once more: nothing to do


def test_an_accounts_home_is_archived_under_its_hub_name_for_the_platform_alone(tmp_path):
    """system-users: the home is the account's (``jupyter-student001``, contract.accounts); the
    archive keeps the hub name, and neither it nor its folder can be read by anyone but the
    platform (the state directory may be passable, 0711, for users' Dask clusters)."""
    import os
    import stat

    homes, archives = tmp_path / "home", tmp_path / "archives" / "summer"
    (homes / "jupyter-student001" / "notebooks").mkdir(parents=True)
    (homes / "jupyter-student001" / "notebooks" / "a.ipynb").write_text("{}")
    (homes / "jupyter-student001" / "results.txt").write_text("my work")
    old = os.umask(0o022)  # a shell's default, not the platform's 077
    try:
        home = homes / "jupyter-student001"
        assert _close_home(home, "student001", "archive", archives).startswith("archived")
    finally:
        os.umask(old)
    assert archived_names(archives / "student001.tar.gz") == WHOLE
    assert not home.exists() and list(homes.iterdir()) == []
    for path in (archives.parent, archives, archives / "student001.tar.gz"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
