"""A class with materials on the real local platform, students as their own Unix accounts.

One platform for the module (``system-users``, first-use passwords, no Dask gateway: the
materials need none). The instructor creates the class with a local bare repository as its
materials; `class prewarm` puts the notebooks in each student's home, owned by the student. A
student edits a notebook as themselves; the instructor pushes a change to another cell of it and
a new notebook; prewarm again: the edit is kept and the new work arrives. A student who swaps the
folder for a link to /etc gets a failed pull, and /etc is untouched. In headless Chromium, the
student logs in with their one-time password and finds the course folder in JupyterLab's file
browser (screenshots kept). Needs root and a Python the students' accounts can run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.auth import LEAN, form_login, issue_class_passwords
from tests.isolation import isolated_config_text, isolated_place, isolation_unavailable
from tests.materials import CourseRepository, cell_sources, notebook
from tests.platform import headless_chromium, run_parhelion, running_platform

pytestmark = pytest.mark.integration

if isolation_unavailable():
    pytest.skip(isolation_unavailable(), allow_module_level=True)

INTRO = ("# Day 1", "import numpy as np", "x = np.arange(3)", "y = x * 2", "print(y)")


@pytest.fixture(scope="module")
def place():
    with isolated_place() as place:
        yield place


@pytest.fixture(scope="module")
def platform(place):
    prefix, root = place
    (root / "platform").mkdir(mode=0o755)
    with running_platform(root / "platform", isolated_config_text(prefix, root, **LEAN)) as running:
        yield running


@pytest.fixture(scope="module")
def school(platform, place):
    """The class, created with its materials and prewarmed once: (passwords, course, homes)."""
    _, root = place
    course = CourseRepository(root / "repo")
    course.push("day 1", {"intro.ipynb": notebook(*INTRO), "data/README.md": "the data\n"})
    passwords = issue_class_passwords(
        platform, root / "platform" / "passwords.csv", "--materials", f"file://{course.bare}"
    )
    done = cli(platform, "class", "prewarm", "helio-school")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "materials: 2 cloned" in done.stdout
    homes = {name: account_home(platform, name) for name in passwords}
    return passwords, course, homes


def cli(platform, *args: str) -> subprocess.CompletedProcess:
    return run_parhelion(*args, "--config", str(platform.config), "--state-dir", str(platform.state))


def account_home(platform, user: str) -> tuple[Path, int]:
    import pwd

    from platform_tools.config import load_platform
    from platform_tools.contract.accounts import user_account

    entry = pwd.getpwnam(user_account(load_platform(platform.state / "platform.yaml"), user))
    return Path(entry.pw_dir), entry.pw_uid


def owners(folder: Path) -> set[int]:
    return {folder.lstat().st_uid} | {path.lstat().st_uid for path in folder.rglob("*")}


def test_prewarm_brings_the_course_and_keeps_each_students_edits(platform, school):
    _, course, homes = school
    home, uid = homes["student001"]
    folder = home / "course"
    assert cell_sources(folder / "intro.ipynb") == list(INTRO)
    for each, each_uid in homes.values():
        assert owners(each) == {each_uid}  # nothing of root's in any home

    # the student edits the notebook, as themselves
    mine = notebook("# Day 1 - my notes", *INTRO[1:])
    subprocess.run(
        [sys.executable, "-c", f"open({str(folder / 'intro.ipynb')!r}, 'w').write({mine!r})"],
        user=uid, group=os.stat(home).st_gid, extra_groups=[], cwd="/", check=True,
    )  # fmt: skip
    # the instructor changes another cell of it and adds day 2
    course.push(
        "day 2",
        {
            "intro.ipynb": notebook(*INTRO[:4], "print(y.sum())"),
            "day2.ipynb": notebook("# Day 2", "import dask"),
        },
    )
    done = cli(platform, "class", "prewarm", "helio-school")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "materials: 2 updated" in done.stdout
    sources = cell_sources(folder / "intro.ipynb")
    assert sources[0] == "# Day 1 - my notes" and sources[4] == "print(y.sum())"
    assert cell_sources(folder / "day2.ipynb") == ["# Day 2", "import dask"]
    assert owners(home) == {uid}

    shown = cli(platform, "class", "show", "helio-school")
    link = f"{platform.url}/hub/user-redirect/git-pull?repo=file%3A%2F%2F"
    assert link in shown.stdout and "urlpath=lab%2Ftree%2Fcourse%2F&branch=main" in shown.stdout


@pytest.mark.adversarial
def test_a_link_in_place_of_the_course_folder_makes_prewarm_write_nothing_there(platform, school):
    _, _, homes = school
    home, uid = homes["student002"]
    etc_before, etc_mtime = sorted(os.listdir("/etc")), os.stat("/etc").st_mtime_ns
    subprocess.run(["rm", "-rf", str(home / "course")], user=uid, check=True, cwd="/")
    subprocess.run(["ln", "-s", "/etc", str(home / "course")], user=uid, check=True, cwd="/")
    done = cli(platform, "class", "prewarm", "helio-school")
    assert done.returncode == 1  # reported, and the other student pulled
    assert "materials: 1 failed, 1 updated" in done.stdout
    assert "student002: failed (~/course exists and is not a clone" in done.stdout
    assert sorted(os.listdir("/etc")) == etc_before and os.stat("/etc").st_mtime_ns == etc_mtime
    assert owners(home) == {uid}


@pytest.mark.browser
def test_the_student_finds_the_course_in_jupyterlab(platform, school, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    passwords, _, homes = school
    artefacts = Path(os.environ.get("PARHELION_TEST_ARTIFACTS") or tmp_path)
    artefacts.mkdir(parents=True, exist_ok=True)
    browser = headless_chromium(tmp_path / "chromium")
    step = "login"
    try:
        assert form_login(browser, platform.url, "student001", passwords["student001"])
        step = "jupyterlab"
        browser.get(f"{platform.url}/hub/spawn")  # one profile: the server starts at once
        WebDriverWait(browser, 240).until(lambda b: "/user/student001/lab" in b.current_url)
        step = "file-browser"
        listing = WebDriverWait(browser, 120).until(
            lambda b: [
                item.text
                for item in b.find_elements(By.CSS_SELECTOR, ".jp-DirListing-itemText")
                if item.text == "course"
            ]
        )
        assert listing == ["course"]
        browser.save_screenshot(str(artefacts / "materials-file-browser.png"))
        step = "course-folder"
        browser.get(f"{platform.url}/user/student001/lab/tree/course/")
        names = WebDriverWait(browser, 60).until(
            lambda b: (
                {"intro.ipynb", "data"}
                <= {item.text for item in b.find_elements(By.CSS_SELECTOR, ".jp-DirListing-itemText")}
            )
        )
        assert names
        browser.save_screenshot(str(artefacts / "materials-course-folder.png"))
    except Exception:
        browser.save_screenshot(str(artefacts / f"materials-failed-at-{step}.png"))
        raise
    finally:
        browser.quit()
    # the server's start pulled too, as the student, in the background
    home, uid = homes["student001"]
    log = platform.state / "logs" / "jupyterhub.log"
    deadline = time.monotonic() + 60
    while "at student001's server start: student001: updated" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "no pull at the server's start in the hub's log"
        time.sleep(1)
    assert owners(home / "course") == {uid}
