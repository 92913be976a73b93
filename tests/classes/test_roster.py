"""Class rosters: every bad row reported at once, naming its row; a valid one becomes a group."""

from __future__ import annotations

import pytest

from platform_tools.classes.roster import RosterError, class_group, read_roster

pytestmark = pytest.mark.unit


def roster(tmp_path, text: str):
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_spreadsheet_export_is_read(tmp_path):
    path = roster(tmp_path, "\ufeffUsername,Email,Name\nann,ann@example.org,Ann\nbo@uni.edu,,Bo\n,,\n")
    students = read_roster(path)
    assert [(s.username, s.row, s.email) for s in students] == [
        ("ann", 2, "ann@example.org"),
        ("bo@uni.edu", 3, ""),
    ]


def test_every_bad_row_is_named(tmp_path):
    path = roster(tmp_path, "username,email\nann,a\nAnn,b\nann,c\nbad name,d\n,e\nok,f,extra\n")
    with pytest.raises(RosterError) as error:
        read_roster(path)
    problems = error.value.problems
    assert problems == [
        f"{path}: row 3: username 'Ann' has capitals: the hub logs in 'ann'; write that",
        f"{path}: row 4: username 'ann' is already on row 2",
        f"{path}: row 5: username 'bad name' is not valid: a username is 1-64 lower-case letters, "
        "digits, '.', '_', '@' or '-', starting with a letter or digit",
        f"{path}: row 6: the username is empty",
        f"{path}: row 7: more fields than the header has columns",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("email,name\na@b,A\n", "row 1: the header needs a 'username' column (found: email, name)"),
        ("username\n", "no students (only a header)"),
    ],
)
def test_a_roster_without_students(tmp_path, text, message):
    with pytest.raises(RosterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_roster(roster(tmp_path, text))


def test_the_class_group(tmp_path):
    students = read_roster(roster(tmp_path, "username\ns001\ns002\n"))
    group = class_group(
        students,
        start="2027-06-14",
        end="2027-06-25",
        budget_usd=15,
        group_usd=3000,
        profiles=["small"],
        quota={"max_servers": 1, "max_dask_cores": 8},
    )
    assert group == {
        "members": ["s001", "s002"],
        "profiles": ["small"],
        "quota": {"max_servers": 1, "max_dask_cores": 8},
        "budget": {
            "usd": 15,
            "period": "course",
            "course": {"start": "2027-06-14", "end": "2027-06-25"},
            "group_usd": 3000,
        },
    }
    with pytest.raises(RosterError, match="class template: budget.course: .*end .* is before start"):
        class_group(students, start="2027-06-25", end="2027-06-14", budget_usd=15)
    with pytest.raises(RosterError, match="class template: quota.max_gpus"):
        class_group(students, start="2027-06-14", end="2027-06-25", budget_usd=15, quota={"max_gpus": 1})


def test_rows_end_only_at_csv_line_ends(tmp_path):
    """A name cell holding a Unicode line or paragraph separator, a form feed or a quoted
    newline is one cell: it must not add a student (splitlines() used to split there)."""
    text = (
        "username,email,name\n"
        "ann,ann@example.org,Ann\u2028lee\n"
        "bo,,Bo\u2029carr\x0cdee\x85eve\n"
        'cy,,"Cy\r\nrow"\r\n'
        "di,,Di\r"
    )
    students = read_roster(roster(tmp_path, text))
    assert [(s.username, s.name) for s in students] == [
        ("ann", "Ann\u2028lee"),
        ("bo", "Bo\u2029carr\x0cdee\x85eve"),
        ("cy", "Cy\r\nrow"),
        ("di", "Di"),
    ]
