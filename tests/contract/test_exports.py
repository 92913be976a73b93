"""CSV exports: a cell a spreadsheet would run as a formula is neutralised in every export;
numbers, negative ones included, stay numbers."""

from __future__ import annotations

import csv
import io

import pytest

from platform_tools.accounting.report import rows_csv
from platform_tools.classes.course import report_csv
from platform_tools.contract.exports import safe_cell

pytestmark = pytest.mark.unit

ATTACKS = ['=HYPERLINK("http://x","y")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", "-"]


@pytest.mark.parametrize("cell", ATTACKS)
def test_a_formula_becomes_text(cell):
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize(
    "cell", ["-1.5", "+3", "-2e-05", "-.5", "0.0001", "ann", "a=b", "", -4, 2.5, None, True]
)
def test_numbers_and_plain_text_stay(cell):
    assert safe_cell(cell) == cell


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_spend_export_is_neutralised():
    rows = [{"user": attack, "groups": attack, "spent_usd": -1.25, "budget_usd": "-3"} for attack in ATTACKS]
    cells = _cells(rows_csv(rows))
    assert cells[0] == ["user", "groups", "spent_usd", "budget_usd"]
    for attack, row in zip(ATTACKS, cells[1:], strict=True):
        assert row == ["'" + attack, "'" + attack, "-1.25", "-3"]


def test_the_class_report_is_neutralised():
    cells = _cells(report_csv({"=1+1": 1.0, "ann": 0.5}, 5))
    assert cells == [
        ["user", "spent_usd", "budget_usd", "percent_of_budget"],
        ["'=1+1", "1.0000", "5", "20.0"],
        ["ann", "0.5000", "5", "10.0"],
        ["TOTAL", "1.5000", "10", "15.0"],
    ]
