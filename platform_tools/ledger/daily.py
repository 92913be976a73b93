"""The ledger read per UTC day, for the reconciliation with the AWS bill, and opened so that
reading cannot write.

What a day holds: each user's charges (compute and storage apart), and the capacity rows
(``schema.Capacity``): nodes' prices and hours, placeholders' and system pods' shares. The
reconciliation (``accounting.reconcile``) sets them against the bill; this module only sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, event, func, inspect, select
from sqlalchemy.engine import Engine, make_url

from platform_tools.ledger.schema import Capacity, Usage
from platform_tools.ledger.store import Ledger

#: Usage kinds that are storage (a volume, a home): the rest of a user's charges are compute.
STORAGE_KINDS = ("storage", "home")


@dataclass
class LedgerDay:
    """One UTC day of the ledger, in dollars as recorded (floats; rounding is the reader's)."""

    day: date
    users_compute: dict[str, float] = field(default_factory=dict)
    users_storage: dict[str, float] = field(default_factory=dict)
    capacity_usd: dict[str, float] = field(default_factory=dict)  # node | placeholder | system
    node_hours: float = 0.0

    @property
    def nodes_recorded(self) -> bool:
        """Whether the meter recorded nodes this day (a meter before capacity rows did not, nor
        does one machine): without them idle, placeholders and system pods cannot be told."""
        return self.node_hours > 0


def read_only_engine(url: str) -> Engine:
    """An engine that cannot write the ledger at ``url``: SQLite opened ``mode=ro`` with
    ``query_only`` (no journal-mode change, no WAL checkpoint on close), PostgreSQL in
    read-only transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "").absolute()
        if not path.is_file():
            raise FileNotFoundError(f"no ledger at {path}")
        engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", future=True)

        @event.listens_for(engine, "connect")
        def _read_only(connection, _record):  # pragma: no cover - exercised via tests
            cursor = connection.cursor()
            cursor.execute("PRAGMA query_only=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

        return engine
    return create_engine(
        url, future=True, pool_pre_ping=True, execution_options={"postgresql_readonly": True}
    )


def open_read_only(url: str) -> Ledger:
    """The ledger at ``url`` for reading only (never migrated: read as it is)."""
    return Ledger(url, read_only_engine(url))


def _start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def ledger_days(ledger: Ledger, first: date, last: date) -> list[LedgerDay]:
    """Each UTC day from ``first`` to ``last`` included, summed from the ledger."""
    has_capacity = inspect(ledger.engine).has_table(Capacity.__tablename__)
    days = []
    with ledger.sessions() as session:
        day = first
        while day <= last:
            start, end = _start(day), _start(day) + 86400
            found = LedgerDay(day)
            users = (
                select(Usage.username, Usage.kind, func.sum(Ledger._overlap_cost(start, end, Usage)))
                .where(Usage.last_seen_at > start, Usage.started_at < end)
                .group_by(Usage.username, Usage.kind)
            )
            for username, kind, usd in session.execute(users):
                into = found.users_storage if kind in STORAGE_KINDS else found.users_compute
                into[username] = into.get(username, 0.0) + float(usd or 0.0)
            if has_capacity:
                capacity = (
                    select(
                        Capacity.kind,
                        func.sum(Ledger._overlap_cost(start, end, Capacity)),
                        func.sum(Ledger._overlap_seconds(start, end, Capacity)),
                    )
                    .where(Capacity.last_seen_at > start, Capacity.started_at < end)
                    .group_by(Capacity.kind)
                )
                for kind, usd, seconds in session.execute(capacity):
                    found.capacity_usd[kind] = float(usd or 0.0)
                    if kind == "node":
                        found.node_hours = float(seconds or 0.0) / 3600.0
            days.append(found)
            day += timedelta(days=1)
    return days
