"""Opening the ledger at start so that a damaged or absent database never crash-loops the service.

While the accounting service is down nothing is metered and no cap is enforced: servers and
clusters keep running unbilled and unstopped. So at start:

* A SQLite ledger that cannot be opened (a garbage header: "file is not a database"), fails
  ``PRAGMA quick_check``, or fails its migration with a corruption error is moved aside, never
  deleted (``accounting.sqlite.corrupt-<UTC time>`` with its ``-wal`` and ``-shm``), the rows
  that can still be read from it are copied into a fresh ledger (table by table, stepping over
  unreadable pages by rowid), and the service starts on the fresh one. ``Recovery`` says what
  was moved where and how many rows of each table were saved, for the log, the events and the
  metrics. A busy or locked database is not corruption and is never moved.
* A PostgreSQL ledger that does not answer is retried with backoff, each attempt logged, for a
  bounded time (``DATABASE_WAIT_SECONDS``); after that the error is raised and the pod restarts.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, OperationalError

from platform_tools.ledger.store import Ledger

log = logging.getLogger(__name__)

#: SQLite's primary result codes that mean the file itself is damaged or is not a database.
SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26
#: What is salvaged, in this order (alembic_version comes from the fresh migration; a ledger
#: from before 0003 has no capacity table, and nothing of it is copied).
TABLES = ("usage", "events", "notices", "meter_state", "capacity")
#: How long a database server that does not answer is waited for at start, and the backoff.
DATABASE_WAIT_SECONDS = 300.0
FIRST_RETRY_SECONDS = 1.0
LONGEST_RETRY_SECONDS = 30.0


class LedgerCorrupt(RuntimeError):
    """The SQLite file is damaged (the check's or the driver's words in the message)."""


@dataclass(frozen=True)
class Recovery:
    """A corrupt ledger moved aside and what was saved from it."""

    path: Path  # the ledger file, now fresh
    moved_to: Path  # the corrupt file, kept
    reason: str
    salvaged: dict[str, int] = field(default_factory=dict)  # rows copied, per table
    unreadable: dict[str, str] = field(default_factory=dict)  # table -> why some rows were not

    def summary(self) -> str:
        counts = ", ".join(f"{table} {self.salvaged.get(table, 0)}" for table in TABLES)
        return (
            f"the ledger {self.path} was corrupt ({self.reason}); it was moved to {self.moved_to} "
            f"(kept with its -wal/-shm) and a fresh ledger started with the rows that could be "
            f"read: {counts}"
        )


def is_corruption(error: BaseException) -> bool:
    """Whether a driver error says the file is damaged (not: locked, busy, read-only, full)."""
    original = getattr(error, "orig", error)
    code = getattr(original, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)
    words = str(original).lower()
    return "malformed" in words or "not a database" in words


def open_ledger(
    url: str,
    log: logging.Logger = log,
    wait_seconds: float = DATABASE_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Ledger, Recovery | None]:
    """The ledger at ``url``, migrated; recovered first if it is a corrupt SQLite file."""
    if make_url(url).get_backend_name() == "sqlite":
        return _open_sqlite(url)
    return _open_server(url, log, wait_seconds, sleep), None


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    return None if not database or database == ":memory:" else Path(database)


def _check_and_migrate(ledger: Ledger) -> None:
    """quick_check, then the migration; corruption in either raises ``LedgerCorrupt``."""
    try:
        with ledger.engine.connect() as connection:
            found = [row[0] for row in connection.execute(text("PRAGMA quick_check"))]
        if found != ["ok"]:
            said = " ".join(" ".join(str(line).split()) for line in found[:3])
            raise LedgerCorrupt(f"PRAGMA quick_check: {said}")
        ledger.migrate()
    except DatabaseError as error:
        if is_corruption(error):
            raise LedgerCorrupt(str(getattr(error, "orig", error))) from error
        raise


def _open_sqlite(url: str) -> tuple[Ledger, Recovery | None]:
    ledger = Ledger(url)
    path = _sqlite_file(url)
    try:
        _check_and_migrate(ledger)
        return ledger, None
    except LedgerCorrupt as error:
        ledger.close()
        if path is None:
            raise
        reason = str(error)
    moved_to = move_aside(path)
    fresh = Ledger(url)
    fresh.migrate()
    fresh.close()  # salvage writes through sqlite3 directly; the engine reconnects on use
    salvaged, unreadable = salvage(moved_to, path)
    return fresh, Recovery(path, moved_to, reason, salvaged, unreadable)


def move_aside(path: Path, now: datetime | None = None) -> Path:
    """Rename the database and its -wal/-shm to ``<name>.corrupt-<UTC time>``; the new path."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():  # two recoveries within a second keep both copies
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    for suffix in ("-wal", "-shm", ""):  # the database last: it names the set
        source = Path(f"{path}{suffix}")
        if source.exists():
            shutil.move(source, f"{target}{suffix}")
    return target


def salvage(corrupt: Path, fresh: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Copy what can be read of each table of ``corrupt`` into ``fresh``; rows copied per table,
    and per table why some could not be read.

    ``corrupt`` is opened read-only (the kept copy is not changed). A table is read in rowid
    order; at an unreadable page the read resumes at the first rowid that reads again, found by
    galloping then bisecting, so one bad page costs its own rows, not the rest of the table.
    """
    salvaged = {table: 0 for table in TABLES}
    unreadable: dict[str, str] = {}
    try:
        source = sqlite3.connect(f"{corrupt.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return salvaged, dict.fromkeys(TABLES, str(error))
    target = sqlite3.connect(fresh)
    try:
        for table in TABLES:
            try:
                columns = _common_columns(source, target, table)
            except sqlite3.Error as error:
                unreadable[table] = str(error)
                continue
            if not columns:
                continue
            rows, why = _readable_rows(source, table, columns)
            if why:
                unreadable[table] = why
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            with target:
                before = target.total_changes
                target.executemany(f'INSERT OR IGNORE INTO "{table}" ({names}) VALUES ({marks})', rows)
                salvaged[table] = target.total_changes - before
    finally:
        source.close()
        target.close()
    return salvaged, unreadable


def _common_columns(source: sqlite3.Connection, target: sqlite3.Connection, table: str) -> list[str]:
    """Columns both schemas have (an older ledger may lack newer ones, which take defaults)."""
    old = [row[1] for row in source.execute(f'PRAGMA table_info("{table}")')]
    new = {row[1] for row in target.execute(f'PRAGMA table_info("{table}")')}
    return [name for name in old if name in new]


def _readable_rows(source: sqlite3.Connection, table: str, columns: list[str]) -> tuple[list[tuple], str]:
    names = ", ".join(f'"{c}"' for c in columns)
    query = f'SELECT rowid, {names} FROM "{table}" WHERE rowid >= ? ORDER BY rowid'
    try:
        top = source.execute(f'SELECT max(rowid) FROM "{table}"').fetchone()[0]
    except sqlite3.Error as error:
        top = None
        why = str(error)
    else:
        why = ""
    rows: list[tuple] = []
    start: int | None = -(2**63)
    while start is not None:
        last = None
        try:
            for row in source.execute(query, (start,)):
                last = row[0]
                rows.append(row[1:])
            break
        except sqlite3.Error as error:
            why = why or str(error)
            resume = (last if last is not None else start) + 1
            start = _next_readable(source, table, resume, top) if top is not None else None
    return rows, why


def _reads(source: sqlite3.Connection, table: str, rowid: int) -> bool:
    try:
        source.execute(
            f'SELECT * FROM "{table}" WHERE rowid >= ? ORDER BY rowid LIMIT 1', (rowid,)
        ).fetchall()
        return True
    except sqlite3.Error:
        return False


def _next_readable(source: sqlite3.Connection, table: str, bad: int, top: int) -> int | None:
    """The smallest rowid from which reading works again after ``bad`` (None: none up to ``top``)."""
    if bad > top:
        return None
    step = 1
    good = bad
    while not _reads(source, table, good):
        bad = good
        if good >= top:
            return None
        step *= 2
        good = min(bad + step, top)
    while good - bad > 1:  # the first readable rowid lies in (bad, good]
        middle = (bad + good) // 2
        if _reads(source, table, middle):
            good = middle
        else:
            bad = middle
    return good


def _open_server(
    url: str, log: logging.Logger, wait_seconds: float, sleep: Callable[[float], None]
) -> Ledger:
    """Migrate, retrying while the server does not answer, for ``wait_seconds`` at most."""
    shown = make_url(url).render_as_string(hide_password=True)
    deadline = time.monotonic() + wait_seconds
    delay = FIRST_RETRY_SECONDS
    attempt = 1
    while True:
        ledger = Ledger(url)
        try:
            ledger.migrate()
            if attempt > 1:
                log.info("ledger database %s answers (attempt %d)", shown, attempt)
            return ledger
        except OperationalError as error:
            ledger.close()
            first_line = str(getattr(error, "orig", error)).strip().splitlines()[0:1]
            why = first_line[0] if first_line else type(error).__name__
            left = deadline - time.monotonic()
            if left <= 0:
                log.error(
                    "ledger database %s still does not answer after %.0f s: %s", shown, wait_seconds, why
                )
                raise
            wait = min(delay, left)
            log.warning(
                "ledger database %s does not answer (%s); retrying in %.0f s "
                "(attempt %d, giving up after %.0f s)",
                shown,
                why,
                wait,
                attempt,
                wait_seconds,
            )
            sleep(wait)
            delay = min(delay * 2, LONGEST_RETRY_SECONDS)
            attempt += 1
