"""`parhelion class create | show | close` on files (no running platform): the class as
platform.yaml holds it, every bad roster row named with nothing written, close's report."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest

from platform_tools.config import load_platform
from tests.platform import REPO_ROOT, run_parhelion

pytestmark = pytest.mark.unit
ROSTER = "username,email\nstudent001,a@x.org\nstudent002,b@x.org\nstudent003,c@x.org\n"


@pytest.fixture
def files(tmp_path):
    config = tmp_path / "platform.yaml"
    config.write_text((REPO_ROOT / "hub_config" / "platform.local.yaml").read_text())
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    return config, roster, tmp_path / "state"


def create(config, roster, state, *extra):
    return run_parhelion(
        "class",
        "create",
        "helio-school",
        "--config",
        str(config),
        "--state-dir",
        str(state),
        "--roster",
        str(roster),
        "--start",
        "2027-06-14",
        "--end",
        "2027-06-25",
        "--session",
        "09:00-12:00",
        "--session",
        "14:00-17:00",
        "--timezone",
        "Europe/Paris",
        "--profile",
        "small",
        "--image",
        "helio",
        "--quota",
        "max_servers=1",
        "--quota",
        "max_dask_cores=8",
        "--budget-usd",
        "15",
        "--class-budget-usd",
        "300",
        "--title",
        "Heliophysics summer school",
        *extra,
    )


def test_create_then_show(files):
    config, roster, state = files
    done = create(config, roster, state)
    assert done.returncode == 0, done.stderr
    group = load_platform(config).groups["helio-school"]
    assert group.members == ["student001", "student002", "student003"]
    assert group.profiles == ["small"] and group.quota.max_dask_cores == 8
    assert group.budget.period == "course" and group.budget.group_usd == 300
    assert group.course.sessions == ["09:00-12:00", "14:00-17:00"] and group.course.image == "helio"
    shown = run_parhelion("class", "show", "helio-school", "--config", str(config), "--state-dir", str(state))
    assert shown.returncode == 0, shown.stderr
    assert "students  3" in shown.stdout and "2027-06-14 to 2027-06-25" in shown.stdout
    assert "09:00-12:00, 14:00-17:00 (Europe/Paris)" in shown.stdout
    assert "$15 per student over the course, $300 for the class" in shown.stdout


def test_a_bad_roster_names_each_row_and_writes_nothing(files):
    config, roster, state = files
    before = config.read_text()
    roster.write_text("username\nstudent001\nStudent002\nstudent001\nbad name\n")
    done = create(config, roster, state)
    assert done.returncode == 1
    assert f"{roster}: row 3: username 'Student002' has capitals" in done.stderr
    assert f"{roster}: row 4: username 'student001' is already on row 2" in done.stderr
    assert f"{roster}: row 5: username 'bad name' is not valid" in done.stderr
    assert config.read_text() == before
    roster.write_text("email\na@x.org\n")
    done = create(config, roster, state)
    assert "row 1: the header needs a 'username' column (found: email)" in done.stderr
    assert config.read_text() == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--profile", "huge"], "groups.helio-school.profiles[0]: unknown profile 'huge'"),
        (["--session", "12:00-11:00"], "ends before it starts"),
        (["--timezone", "Mars/Olympus"], "unknown timezone 'Mars/Olympus'"),
    ],
)
def test_bad_class_settings_are_named(files, extra, message):
    config, roster, state = files
    before = config.read_text()
    done = create(config, roster, state, *extra)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert config.read_text() == before


def test_close_without_a_running_platform_archives_homes_and_reports(files):
    config, roster, state = files
    assert create(config, roster, state).returncode == 0
    (state / "homes" / "student001" / "notebooks").mkdir(parents=True)
    (state / "homes" / "student001" / "notebooks" / "work.ipynb").write_text("{}")
    done = run_parhelion("class", "close", "helio-school", "--config", str(config), "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert "1 archived" in done.stdout and "2 none" in done.stdout
    assert (state / "archives" / "helio-school" / "student001.tar.gz").exists()
    assert not (state / "homes" / "student001").exists()
    report = (state / "reports" / "helio-school.csv").read_text().splitlines()
    assert report[0] == "user,spent_usd,budget_usd,percent_of_budget"
    assert report[-1].startswith("TOTAL,0.0000,45,")
    closed = load_platform(config)
    assert closed.groups["helio-school"].closed and "student001" not in closed.allowed_users


@pytest.mark.skipif(os.geteuid() != 0, reason="making Unix accounts needs root")
def test_system_users_create_makes_the_accounts_and_close_archives_their_homes(files):
    """system-users: `class create` makes each student's account (9:00 does not wait on
    useradd); `class close` archives the home where the account has it, under the hub name."""
    from tests.isolation import remove_accounts

    config, roster, state = files
    prefix = f"pt{secrets.token_hex(3)}-"
    homes = Path(tempfile.mkdtemp(prefix="parhelion-homes-"))
    os.chmod(homes, 0o755)
    config.write_text(
        config.read_text().replace(
            "  spawner: simple\n  trusted: true\n",
            f"  spawner: system-users\n  accounts: {{prefix: {prefix}, home_root: {homes}}}\n",
        )
    )
    try:
        done = create(config, roster, state)
        assert done.returncode == 0, done.stderr
        assert f"accounts: 3 ready ({prefix}student001, ...)" in done.stdout
        account = pwd.getpwnam(f"{prefix}student001")
        assert account.pw_dir == str(homes / f"{prefix}student001")
        (Path(account.pw_dir) / "work.ipynb").write_text("{}")
        done = run_parhelion(
            "class", "close", "helio-school", "--config", str(config), "--state-dir", str(state)
        )
        assert done.returncode == 0, done.stderr
        assert "3 archived" in done.stdout, done.stdout
        with tarfile.open(state / "archives" / "helio-school" / "student001.tar.gz") as archive:
            assert "student001/work.ipynb" in archive.getnames()
        assert not Path(account.pw_dir).exists()
    finally:
        remove_accounts(prefix)
        shutil.rmtree(homes, ignore_errors=True)
