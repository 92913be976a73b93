"""Pulling a course's materials into homes with nbgitpuller, from a real bare repository.

First as this process's own account (the ``simple`` platform): nbgitpuller's rules hold
(a student's edits are kept, their version wins a conflict, deleted files come back, new files
arrive, a second pull changes nothing), one failing home is reported while the others are
pulled, a pull that hangs is stopped with its children. Then, as root, with real Unix
accounts: the pull runs as each student and leaves nothing of root's in their home, and a
student who swaps the folder for a link to /etc or to another student's home gets a refusal,
never a write there.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from platform_tools.classes.materials import Home, HomeLocks, Pulled, PullRounds, pull_homes
from platform_tools.config.materials import CourseMaterials
from tests.materials import CourseRepository, cell_sources, notebook

pytestmark = pytest.mark.unit

INTRO = ("# Day 1", "import sunpy", "x = 1", "y = 2", "print(x + y)")


@pytest.fixture
def course(tmp_path) -> CourseRepository:
    repo = CourseRepository(tmp_path / "repo")
    repo.push("day 1", {"intro.ipynb": notebook(*INTRO), "data/readme.md": "the data\n"})
    return repo


def pull(homes, materials, **kwargs) -> list[Pulled]:
    return asyncio.run(pull_homes(homes, materials, **kwargs))


def test_nbgitpullers_rules_keep_the_students_work(course, tmp_path):
    materials = CourseMaterials(repo=str(course.bare), folder="course")
    home = Home("ann", tmp_path / "ann")
    home.path.mkdir()
    [first] = pull([home], materials)
    assert (first.outcome, first.detail) == ("cloned", "")
    folder = home.path / "course"
    assert cell_sources(folder / "intro.ipynb") == list(INTRO)

    # the student edits the first cells and deletes the readme
    mine = notebook("# Day 1 - my notes", "import sunpy", "x = 10", "y = 2", "print(x + y)")
    (folder / "intro.ipynb").write_text(mine)
    (folder / "data" / "readme.md").unlink()
    # the instructor changes the last cell and the first (a conflict), and adds day 2
    course.push(
        "day 2",
        {
            "intro.ipynb": notebook("# Day 1 (revised)", "import sunpy", "x = 1", "y = 2", "print(x * y)"),
            "day2.ipynb": notebook("# Day 2", "import dask"),
        },
    )
    [second] = pull([home], materials)
    assert second.outcome == "updated", second
    sources = cell_sources(folder / "intro.ipynb")
    assert sources[0] == "# Day 1 - my notes"  # a conflict: the student's version wins
    assert sources[2] == "x = 10"  # their edit is kept
    assert sources[4] == "print(x * y)"  # the instructor's change elsewhere arrives
    assert cell_sources(folder / "day2.ipynb") == ["# Day 2", "import dask"]
    assert (folder / "data" / "readme.md").read_text() == "the data\n"  # deleted: restored

    before = {p: p.read_bytes() for p in folder.rglob("*.ipynb")}
    [again] = pull([home], materials)  # nothing new: nothing changes
    assert again.outcome == "updated"
    assert {p: p.read_bytes() for p in folder.rglob("*.ipynb")} == before


def test_a_failing_home_is_reported_and_the_others_are_pulled(course, tmp_path):
    materials = CourseMaterials(repo=f"file://{course.bare}")
    homes = [Home(name, tmp_path / name) for name in ("ann", "bob", "cid", "dee")]
    for home in homes:
        home.path.mkdir()
    (tmp_path / "bob" / "course").mkdir()  # bob's own folder of that name: not a clone
    (tmp_path / "bob" / "course" / "mine.txt").write_text("bob's")
    (tmp_path / "cid" / "course").write_text("a file")
    results = pull(homes, materials, jobs=2)
    assert [(r.user, r.outcome) for r in results] == [
        ("ann", "cloned"),
        ("bob", "failed"),
        ("cid", "failed"),
        ("dee", "cloned"),
    ]
    assert results[1].detail == "~/course exists and is not a clone of the course's repository: left as it is"
    assert (tmp_path / "bob" / "course" / "mine.txt").read_text() == "bob's"
    assert sorted(os.listdir(tmp_path / "bob" / "course")) == ["mine.txt"]
    assert (tmp_path / "cid" / "course").read_text() == "a file"
    wrong_branch = CourseMaterials(repo=str(course.bare), branch="no-such-branch")
    [missing] = pull([Home("eve", tmp_path / "eve")], wrong_branch)
    assert missing.outcome == "failed" and "no branch 'no-such-branch'" in missing.detail


def test_a_pull_that_hangs_is_stopped_with_its_children(tmp_path):
    """The timeout stops the whole process group: git's helpers too, not only nbgitpuller."""
    hanging = tmp_path / "python"
    hanging.write_text(
        f"#!/bin/sh\necho $$ > {tmp_path}/pid\nsleep 300 &\necho $! > {tmp_path}/child\nwait\n"
    )
    hanging.chmod(0o755)
    materials = CourseMaterials(repo="https://git.example.org/a/course").model_copy(
        update={"timeout_seconds": 1}
    )
    started = time.monotonic()
    [result] = pull([Home("ann", tmp_path)], materials, python=str(hanging))
    assert result.outcome == "timed out" and "timeout_seconds" in result.detail
    assert time.monotonic() - started < 10
    for name in ("pid", "child"):
        pid = int((tmp_path / name).read_text())
        deadline = time.monotonic() + 10  # SIGKILL was sent: the kernel ends it soon after
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid), name


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_home_being_pulled_is_not_pulled_twice_at_once(course, tmp_path):
    locks = HomeLocks(tmp_path / "locks")
    home = Home("ann", tmp_path / "ann")
    held = locks.take(home)
    try:
        [busy] = pull([home], CourseMaterials(repo=str(course.bare)), locks=locks)
    finally:
        os.close(held)
    assert busy.outcome == "busy" and not (tmp_path / "ann" / "course").exists()
    [done] = pull([home], CourseMaterials(repo=str(course.bare)), locks=locks)
    assert done.outcome == "cloned"


def test_the_scheduler_pulls_everyone_once_per_window_then_only_who_was_missed():
    rounds = PullRounds()
    members = ["ann", "bob", "cid"]
    assert rounds.who("school", members, 1200, now=0) == members
    rounds.record("school", [Pulled("ann", "cloned"), Pulled("bob", "timed out"), Pulled("cid", "busy")])
    assert rounds.who("school", members, 1200, now=30) == ["bob", "cid"]
    rounds.record("school", [Pulled("bob", "updated"), Pulled("cid", "updated")])
    assert rounds.who("school", members, 1200, now=60) == []
    assert rounds.who("school", members, 1200, now=1200) == members  # the next window: everyone


# ------------------------------------------------------------------ as students, as root


@pytest.fixture
def students(tmp_path):
    """Two real accounts (``pt<hex>-ann``, ``-bob``), removed after; the course in a 0755 folder."""
    from tests.isolation import isolated_place, isolation_unavailable

    if isolation_unavailable():
        pytest.skip(isolation_unavailable())
    from platform_tools.local.accounts import Accounts

    with isolated_place() as (prefix, root):
        accounts = Accounts("materials-test", prefix, root / "home", tmp_path / "accounts.lock")
        homes = {}
        for name in ("ann", "bob"):
            account = accounts.ensure(name)
            homes[name] = Home(name, account.home, account.uid, account.gid, account.name)
        repo = CourseRepository(root / "repo")
        repo.push("day 1", {"intro.ipynb": notebook(*INTRO)})
        yield homes, repo


def as_student(home: Home, *argv: str) -> None:
    subprocess.run(argv, user=home.uid, group=home.gid, extra_groups=[], check=True, cwd="/")


def owners(folder: Path) -> set[int]:
    found = {folder.lstat().st_uid}
    for path in folder.rglob("*"):
        found.add(path.lstat().st_uid)
    return found


def digest(folder: Path) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_the_pull_runs_as_each_student(students):
    homes, repo = students
    materials = CourseMaterials(repo=str(repo.bare))
    results = pull(list(homes.values()), materials)
    assert [r.outcome for r in results] == ["cloned", "cloned"], results
    for home in homes.values():
        assert owners(home.path) == {home.uid}  # nothing of root's in a student's home
        assert cell_sources(home.path / "course" / "intro.ipynb") == list(INTRO)
        mode = (home.path / "course" / "intro.ipynb").stat().st_mode & 0o777
        assert mode == 0o600  # umask 077: nobody else's to read
    # ann edits as herself; the instructor pushes; her edit stays, the new file is hers
    ann = homes["ann"]
    as_student(
        ann, sys.executable, "-c", f"open({str(ann.path / 'course' / 'notes.txt')!r}, 'w').write('mine')"
    )
    repo.push("day 2", {"day2.ipynb": notebook("# Day 2")})
    [again] = pull([ann], materials)
    assert again.outcome == "updated"
    assert (ann.path / "course" / "notes.txt").read_text() == "mine"
    assert owners(ann.path) == {ann.uid}


@pytest.mark.adversarial
def test_a_link_in_place_of_the_folder_makes_no_write_elsewhere(students):
    """Root starts the pull; the student has swapped ~/course for a link to /etc, or to the
    other student's course folder. The pull is the student's own process: it cannot write
    there, fails, and says so; /etc and bob's files are as they were."""
    homes, repo = students
    ann, bob = homes["ann"], homes["bob"]
    materials = CourseMaterials(repo=str(repo.bare))
    [bobs] = pull([bob], materials)
    assert bobs.outcome == "cloned"
    bob_before, etc_before = digest(bob.path), sorted(os.listdir("/etc"))
    etc_mtime = os.stat("/etc").st_mtime_ns
    for target in ("/etc", str(bob.path / "course")):
        as_student(ann, "ln", "-sfn", target, str(ann.path / "course"))
        [result] = pull([ann], materials)
        assert result.outcome == "failed", result
        assert digest(bob.path) == bob_before and owners(bob.path) == {bob.uid}
        assert sorted(os.listdir("/etc")) == etc_before and os.stat("/etc").st_mtime_ns == etc_mtime
        assert not (Path("/etc") / ".git").exists()
    assert owners(ann.path) == {ann.uid}


def test_a_pull_never_runs_as_root(course, tmp_path):
    [refused] = pull([Home("root", tmp_path, 0, 0, "root")], CourseMaterials(repo=str(course.bare)))
    assert refused.outcome == "failed" and "never runs as root" in refused.detail
    assert not (tmp_path / "course").exists()


def test_a_pull_cancelled_stops_with_its_children(tmp_path):
    """A prewarm stopped with Ctrl-C (asyncio.run cancels its tasks) or a hub shutting down
    must not leave pulls running in their own sessions after the home's lock is released."""
    from platform_tools.classes.materials import pull_home

    hanging = tmp_path / "python"
    hanging.write_text(
        f"#!/bin/sh\necho $$ > {tmp_path}/pid\nsleep 300 &\necho $! > {tmp_path}/child\nwait\n"
    )
    hanging.chmod(0o755)
    materials = CourseMaterials(repo="https://git.example.org/a/course")

    async def scene() -> None:
        task = asyncio.ensure_future(pull_home(Home("ann", tmp_path), materials, python=str(hanging)))
        deadline = time.monotonic() + 10
        while not (tmp_path / "child").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scene())
    for name in ("pid", "child"):
        pid = int((tmp_path / name).read_text())
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid), name


def test_hooks_in_the_students_clone_never_run(course, tmp_path):
    """A student owns their clone, .git/hooks included: a hook they plant must not run in the
    next pull (prewarm's or a start's), where it could hold a pull slot for the timeout."""
    materials = CourseMaterials(repo=str(course.bare), folder="course")
    home = Home("ann", tmp_path / "ann")
    home.path.mkdir()
    pull([home], materials)
    ran = tmp_path / "hook-ran"
    for name in ("post-merge", "post-checkout", "pre-merge-commit", "pre-commit", "reference-transaction"):
        hook = home.path / "course" / ".git" / "hooks" / name
        hook.write_text(f"#!/bin/sh\necho {name} >> {ran}\n")
        hook.chmod(0o755)
    course.push("day 2", {"day2.ipynb": notebook("# Day 2")})
    [again] = pull([home], materials)
    assert again.outcome == "updated" and (home.path / "course" / "day2.ipynb").exists()
    assert not ran.exists(), ran.read_text()
