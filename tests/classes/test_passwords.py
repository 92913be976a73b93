"""`parhelion class create --passwords`: one-time passwords into the instructor's CSV only,
their hashes where the hub's authenticator checks them, no re-issue unless asked."""

from __future__ import annotations

import csv
import os
import stat

import bcrypt
import pytest
import yaml
from jupyterhub.orm import new_session_factory
from nativeauthenticator.orm import UserInfo

from platform_tools.classes.passwords import (
    ALPHABET,
    PasswordIssueError,
    issue_passwords,
    one_time_password,
)
from platform_tools.config.auth import FirstUseAuth, NativeAuth, SharedPasswordAuth
from platform_tools.contract.passwords import first_use_store, hub_database, open_first_use_store

pytestmark = pytest.mark.unit
STUDENTS = ["student001", "student002", "student003"]


def read_csv(path) -> dict[str, str]:
    with open(path, newline="") as handle:
        return {row["username"]: row["password"] for row in csv.DictReader(handle)}


def first_use_hashes(state) -> dict[str, bytes]:
    with open_first_use_store(first_use_store(state)) as db:
        return {key.decode(): db[key] for key in db.keys()}  # noqa: SIM118 (gdbm objects do not iterate)


def native_rows(state) -> dict[str, UserInfo]:
    session = new_session_factory(f"sqlite:///{hub_database(state)}")()
    try:
        return {row.username: row for row in session.query(UserInfo)}
    finally:
        session.close()


def test_a_one_time_password_is_long_random_and_readable():
    passwords = {one_time_password(8) for _ in range(50)}
    assert len(passwords) == 50
    sample = passwords.pop()
    assert len(sample.replace("-", "")) == 12 and set(sample.replace("-", "")) <= set(ALPHABET)
    assert len(one_time_password(20).replace("-", "")) >= 20


def test_first_use_issue_writes_the_csv_privately_and_the_hashes_where_the_hub_checks(tmp_path):
    state, sheet = tmp_path / "state", tmp_path / "sheet.csv"
    issued = issue_passwords(FirstUseAuth(type="first-use"), state, STUDENTS, sheet)
    assert issued.issued == STUDENTS and issued.kept == []
    assert stat.S_IMODE(os.stat(sheet).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state / "secrets").st_mode) == 0o700
    passwords = read_csv(sheet)
    hashes = first_use_hashes(state)
    assert set(hashes) == set(STUDENTS)
    for name, password in passwords.items():
        assert bcrypt.checkpw(password.encode(), hashes[name])
    clear = [
        p
        for p in state.rglob("*")
        if p.is_file() and any(pw.encode() in p.read_bytes() for pw in passwords.values())
    ]
    assert clear == []  # in clear only in the instructor's CSV
    assert not list(tmp_path.glob(".sheet.csv*"))


def test_a_student_with_a_password_keeps_it_unless_reissued(tmp_path):
    state = tmp_path / "state"
    auth = FirstUseAuth(type="first-use")
    issue_passwords(auth, state, STUDENTS[:1], tmp_path / "first.csv")
    before = first_use_hashes(state)["student001"]
    again = issue_passwords(auth, state, STUDENTS, tmp_path / "late.csv")
    assert (again.issued, again.kept) == (STUDENTS[1:], ["student001"])
    assert set(read_csv(tmp_path / "late.csv")) == set(STUDENTS[1:])
    assert first_use_hashes(state)["student001"] == before
    nothing = issue_passwords(auth, state, STUDENTS, tmp_path / "none.csv")
    assert nothing.issued == [] and not (tmp_path / "none.csv").exists()
    reissued = issue_passwords(auth, state, STUDENTS[:1], tmp_path / "new.csv", reissue=True)
    assert reissued.issued == ["student001"]
    assert bcrypt.checkpw(
        read_csv(tmp_path / "new.csv")["student001"].encode(), first_use_hashes(state)["student001"]
    )


def test_native_issue_creates_authorized_users_in_the_hubs_database(tmp_path):
    state = tmp_path / "state"
    issue_passwords(NativeAuth(type="native"), state, STUDENTS, tmp_path / "sheet.csv")
    assert stat.S_IMODE(os.stat(hub_database(state)).st_mode) == 0o600
    passwords = read_csv(tmp_path / "sheet.csv")
    rows = native_rows(state)
    assert set(rows) == set(STUDENTS)
    for name, row in rows.items():
        assert row.is_authorized and row.is_valid_password(passwords[name])
    kept = issue_passwords(NativeAuth(type="native"), state, STUDENTS, tmp_path / "again.csv")
    assert kept.kept == STUDENTS
    issue_passwords(NativeAuth(type="native"), state, ["student002"], tmp_path / "re.csv", reissue=True)
    assert native_rows(state)["student002"].is_valid_password(read_csv(tmp_path / "re.csv")["student002"])


def test_no_issue_without_per_person_passwords_or_over_an_existing_sheet(tmp_path):
    with pytest.raises(PasswordIssueError, match="hub.auth.type is 'shared-password'"):
        issue_passwords(SharedPasswordAuth(), tmp_path, STUDENTS, tmp_path / "s.csv")
    (tmp_path / "s.csv").write_text("username,password\r\nstudent001,kept-nowhere-else\r\n")
    with pytest.raises(PasswordIssueError, match="the file exists"):
        issue_passwords(FirstUseAuth(type="first-use"), tmp_path, STUDENTS, tmp_path / "s.csv")
    assert "kept-nowhere-else" in (tmp_path / "s.csv").read_text()


@pytest.fixture
def files(tmp_path):
    from tests.classes.test_class_commands import ROSTER
    from tests.platform import REPO_ROOT

    config = tmp_path / "platform.yaml"
    text = (REPO_ROOT / "hub_config" / "platform.local.yaml").read_text()
    config.write_text(text.replace("type: shared-password", "type: first-use"))
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    return config, roster, tmp_path / "state"


def create_args(config, roster, state, *extra: str) -> list[str]:
    args = ["class", "create", "helio-school", "--config", str(config), "--state-dir", str(state)]
    args += ["--roster", str(roster), "--start", "2027-06-14", "--end", "2027-06-25"]
    return [*args, "--profile", "small", "--budget-usd", "15", *extra]


def test_class_create_issues_passwords_and_prints_none(files, tmp_path, capsys):
    """In-process (the command's own main, its real stdout and stderr): the integration tests
    run it as a command against a running platform."""
    from platform_tools.cli.main import main

    config, roster, state = files
    assert main(create_args(config, roster, state, "--passwords", str(tmp_path / "sheet.csv"))) == 0
    said = capsys.readouterr()
    passwords = read_csv(tmp_path / "sheet.csv")
    assert set(passwords) == {"student001", "student002", "student003"}
    assert not any(password in said.out + said.err for password in passwords.values())
    assert "3 one-time passwords in" in said.out
    assert main(create_args(config, roster, state, "--passwords", str(tmp_path / "again.csv"))) == 0
    assert "3 students already have a password, kept (--reissue" in capsys.readouterr().out
    assert not (tmp_path / "again.csv").exists()


def test_class_create_refuses_passwords_for_a_shared_password_before_writing(files, tmp_path, capsys):
    from platform_tools.cli.main import main

    config, roster, state = files
    config.write_text(config.read_text().replace("type: first-use", "type: shared-password"))
    before = config.read_text()
    args = create_args(config, roster, state)
    assert main([*args, "--passwords", str(tmp_path / "sheet.csv")]) == 1
    assert "--passwords: hub.auth.type is 'shared-password'" in capsys.readouterr().err
    assert config.read_text() == before and "helio-school" not in yaml.safe_load(before)["groups"]
    assert main([*args, "--reissue"]) == 1
    assert capsys.readouterr().err.startswith("--reissue goes with --passwords")
    assert not (tmp_path / "sheet.csv").exists() and not state.exists()
