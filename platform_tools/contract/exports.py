"""CSV files Parhelion hands to people: spend reports, class reports, catalog listings.

An admin opens them in a spreadsheet, and a spreadsheet runs a cell that starts with ``=``,
``+``, ``-`` or ``@`` as a formula (and, after a tab or carriage return, so do some): a
username, group, description or dataset title chosen by someone else must never become one
(OWASP, "CSV Injection"). Every CSV export goes through ``csv_text`` (or ``safe_cell``), which
writes such a cell with a leading apostrophe, the spreadsheet's own mark for "text, not a
formula", shown to nobody.

The rule keeps numbers numbers: a cell that is a plain decimal number as a whole (``-1.5``,
``+3``, ``-2e-05``: what a negative amount or a refund looks like) is written as it is, since a
spreadsheet reads it as a number and never runs it; ``-1+2`` or ``-cmd`` are not numbers and are
neutralised. Python numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

#: What OWASP lists as a formula's first character, tab and carriage return included.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet may read it: text that would start a formula gets a
    leading apostrophe; numbers, and text that is a plain number, stay as they are."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV document with every cell, the header's too, made safe.

    Lines end in ``\\r\\n`` (RFC 4180, what spreadsheets write): with ``\\n`` alone Python's
    writer leaves a cell holding a carriage return unquoted, and the file no longer reads back.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(name) for name in header])
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return out.getvalue()
