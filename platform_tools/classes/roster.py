"""Class rosters: a CSV of students becomes a group in platform.yaml.

A summer school sends a spreadsheet; the roster play turns it into a group whose members
get the class's profiles, quota template and a budget for the course window. The CSV
needs a ``username`` column (other columns, such as ``email`` or ``name``, are kept for
the people running the class and ignored here). Every problem is reported at once, each
naming its row, and nothing is applied while any remain: a class of 300 must not start
with 299 accounts because one row had a capital letter.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from platform_tools.config.models import Group
from platform_tools.config.models_base import PATTERN_MEANINGS, USERNAME_PATTERN


@dataclass(frozen=True)
class Student:
    username: str
    row: int  # the CSV line (the header is line 1)
    email: str = ""
    name: str = ""


class RosterError(ValueError):
    """Everything wrong with a roster, one line per problem, each naming file and row."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def read_roster(path: str | Path) -> list[Student]:
    path = Path(path)
    try:
        # newline="": the csv module, not the file, decides where records end (a quoted cell
        # may hold a newline). utf-8-sig: spreadsheets often write a BOM.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise RosterError([f"{path}: no such file"]) from None
    except UnicodeDecodeError as exc:
        raise RosterError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    # Records end only at \n, \r\n or \r outside quotes, as the csv module reads them:
    # str.splitlines() also splits at U+2028, U+0085, form feeds and the like, so a name cell
    # holding one became a line of its own and its second half a student.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "username" not in columns:
        found = ", ".join(columns) or "none"
        raise RosterError([f"{path}: row 1: the header needs a 'username' column (found: {found})"])
    problems: list[str] = []
    students: list[Student] = []
    first_row: dict[str, int] = {}
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            problems.append(f"{path}: row {number}: more fields than the header has columns")
            continue
        username = row.get("username", "")
        if not username and not any(row.values()):
            continue  # a blank line at the end of a spreadsheet export
        problem = username_problem(username)
        if problem:
            problems.append(f"{path}: row {number}: {problem}")
        elif username in first_row:
            problems.append(
                f"{path}: row {number}: username {username!r} is already on row {first_row[username]}"
            )
        else:
            first_row[username] = number
            students.append(Student(username, number, row.get("email", ""), row.get("name", "")))
    if not problems and not students:
        problems.append(f"{path}: no students (only a header)")
    if problems:
        raise RosterError(problems)
    return students


def username_problem(username: str) -> str | None:
    """Why ``username`` cannot be a hub login, or None."""
    if not username:
        return "the username is empty"
    if re.fullmatch(USERNAME_PATTERN, username):
        return None
    if re.fullmatch(USERNAME_PATTERN, username.lower()):
        return f"username {username!r} has capitals: the hub logs in {username.lower()!r}; write that"
    return f"username {username!r} is not valid: {PATTERN_MEANINGS[USERNAME_PATTERN]}"


def class_group(
    students: list[Student],
    *,
    start: date | str,
    end: date | str,
    budget_usd: float,
    group_usd: float | None = None,
    profiles: list[str] | None = None,
    quota: dict[str, Any] | None = None,
    description: str = "",
    course: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The class's group, as platform.yaml holds it: members, profiles, quota, course budget,
    and ``course`` (sessions, timezone, image, homes at close: platform.yaml's course settings)."""
    group: dict[str, Any] = {"members": [s.username for s in students]}
    if description:
        group["description"] = description
    if profiles is not None:
        group["profiles"] = list(profiles)
    if quota:
        group["quota"] = dict(quota)
    budget: dict[str, Any] = {
        "usd": budget_usd,
        "period": "course",
        "course": {"start": str(start), "end": str(end)},
    }
    if group_usd is not None:
        budget["group_usd"] = group_usd
    group["budget"] = budget
    if course is not None:
        group["course"] = {key: value for key, value in course.items() if value not in (None, "", [])}
    try:
        Group.model_validate(group)
    except ValidationError as exc:
        raise RosterError(
            [f"class template: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        ) from None
    return group
