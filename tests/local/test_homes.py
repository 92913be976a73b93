"""The platform's notebooks copied into a home: a student's own, and nothing outside it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from platform_tools.local.homes import provide_notebooks

#: A uid and gid no account here has: what the copy must give its files to.
STUDENT = (54321, 54321)


def _notebooks(root: Path, count: int) -> Path:
    source = root / "notebooks-source"
    (source / "data").mkdir(parents=True)
    for index in range(count):
        (source / f"lesson-{index:03}.ipynb").write_text('{"cells": []}\n')
        (source / "data" / f"part-{index:03}.csv").write_text("a,b\n1,2\n")
    (source / "__pycache__").mkdir()
    return source


def test_a_copy_for_the_simple_spawner_keeps_the_files_and_skips_caches(tmp_path):
    source = _notebooks(tmp_path, 3)
    home = tmp_path / "home"
    assert provide_notebooks(home, source)
    assert sorted(p.name for p in (home / "notebooks").iterdir()) == [
        "data",
        "lesson-000.ipynb",
        "lesson-001.ipynb",
        "lesson-002.ipynb",
    ]
    assert not provide_notebooks(home, source)  # never over the user's own


def test_a_link_left_where_the_notebooks_go_is_neither_followed_nor_replaced(tmp_path):
    source = _notebooks(tmp_path, 2)
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    (home / "notebooks").symlink_to(elsewhere)  # dangling: exists() is False
    assert not provide_notebooks(home, source)
    assert not elsewhere.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another account needs root")
def test_the_copy_gives_everything_to_the_account(tmp_path):
    source = _notebooks(tmp_path, 2)
    os.chmod(source / "lesson-000.ipynb", 0o640)
    home = tmp_path / "home"
    assert provide_notebooks(home, source, *STUDENT)
    copied = [home, *(home / "notebooks").rglob("*"), home / "notebooks"]
    assert {(p.lstat().st_uid, p.lstat().st_gid) for p in copied} == {STUDENT}
    assert (home / "notebooks" / "lesson-000.ipynb").stat().st_mode & 0o777 == 0o640
    assert (home / "notebooks" / "data" / "part-001.csv").read_text() == "a,b\n1,2\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another account needs root")
def test_a_student_swapping_the_folder_for_a_link_during_the_copy_gets_nothing_outside_their_home(
    tmp_path,
):
    """Root copies while the student's own processes run (a Dask worker, another server): the
    student renames the new ``notebooks`` aside and puts a link to a root folder (here a stand-in
    for /etc) in its place. Root must not copy into that folder, nor chown it to the student."""
    source = _notebooks(tmp_path, 150)
    home = tmp_path / "home"
    home.mkdir()
    victim = tmp_path / "etc"
    victim.mkdir(mode=0o755)
    (victim / "shadow").write_text("root:secret\n")
    target, aside = home / "notebooks", home / "notebooks.aside"
    done, swapped = threading.Event(), threading.Event()

    def student() -> None:
        while not done.is_set():
            if target.is_dir() and not target.is_symlink():
                target.rename(aside)
                target.symlink_to(victim)
                swapped.set()
                return

    attacker = threading.Thread(target=student)
    attacker.start()
    try:
        copied = provide_notebooks(home, source, *STUDENT)
    finally:
        done.set()
        attacker.join()
    assert swapped.is_set(), "the student's swap did not happen during the copy"
    assert (victim.stat().st_uid, victim.stat().st_gid) == (0, 0)
    assert sorted(p.name for p in victim.iterdir()) == ["shadow"]
    assert (victim / "shadow").stat().st_uid == 0
    if copied:  # the copy went on in the folder root made, now under the student's other name
        assert len(list(aside.glob("lesson-*.ipynb"))) == 150
        assert {p.lstat().st_uid for p in [aside, *aside.rglob("*")]} == {STUDENT[0]}
    else:  # swapped before root opened it: nothing copied, the start goes on without it
        assert list(aside.iterdir()) == []
