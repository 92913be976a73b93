"""The ledger: what ran for whom, for how long, at what rate — and what it cost.

Usage comes in as samples: "at time t these resources were running". Each resource
lifetime is one row; a sample inserts new lifetimes, moves ``last_seen_at`` of known
ones forward to t, and closes lifetimes no longer running. A sample is one transaction
and never moves a time backwards, so a kill -9 at any moment neither loses a committed
sample nor counts one twice, and replaying a sample is harmless.

Spend over any window is the sum of each lifetime's rate times its overlap with the
window, computed in SQL that SQLite and PostgreSQL both run.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import case, create_engine, delete, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from platform_tools.ledger.schema import Capacity, Event, MeterState, Notice, Usage

MIGRATIONS = Path(__file__).with_name("migrations")


#: Rows a statement upserts: 13 columns each (14 for capacity rows), within the bind-parameter
#: limit (SQLite before 3.32 allows 999; newer, and PostgreSQL, far more).
UPSERT_CHUNK = 500 if sqlite3.sqlite_version_info >= (3, 32) else 999 // 14

#: The owner recorded on capacity rows (nodes, placeholders, system pods): no user's. Those rows
#: live in their own table, so no user-facing sum can count them whatever this name is.
CLUSTER_OWNER = "(cluster)"

#: The same event said again within this many seconds is counted on the first one's row.
REPEAT_WINDOW_SECONDS = 600.0


@dataclass(frozen=True)
class NewNotice:
    """A threshold to tell a user about once, with the event that tells it."""

    username: str
    period_key: str
    threshold: float
    action: str
    rule: str
    message: str
    spend_usd: float | None = None
    cap_usd: float | None = None


@dataclass(frozen=True)
class Observation:
    """A resource seen running, with what it requests and the rate it is charged."""

    resource_key: str  # stable for one lifetime, e.g. "server:demo:<started>"
    username: str
    kind: str  # server | dask-scheduler | dask-worker | storage
    started_at: float
    rate_per_hour: float
    description: str = ""
    cpu: float = 0.0
    memory_gib: float = 0.0
    storage_gib: float = 0.0
    instance_type: str = ""
    capacity_type: str = ""
    # the key an older Parhelion knew this lifetime by: its open row continues under the new
    # key (local homes were "storage:<user>:home" before they had one key per life)
    previous_key: str | None = None
    # capacity no user is charged for (a node, a placeholder, a system pod): recorded in the
    # ``capacity`` table, never in ``usage``. Set only by the meter's own code, never from a
    # label a user could choose, so nothing a user runs can move out of their budget.
    capacity: bool = False
    node: str = ""  # the node a capacity pod runs on (a node's own name for a node)


def make_engine(url: str) -> Engine:
    """An engine for the ledger; SQLite gets WAL mode, a busy timeout and durable commits."""
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):  # pragma: no cover - exercised via tests
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

    return engine


class Ledger:
    def __init__(self, url: str, engine: Engine | None = None):
        self.url = url
        self.engine = engine or make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._rekeyed: set[str] = set()  # keys whose previous key was looked for
        self._memo: dict[tuple, float] = {}  # sums cached until the next sample (``memo_spend``)
        self._generation = 0
        self._last_at: float | None = None  # the newest sample this object recorded

    # --------------------------------------------------------------- schema

    def migrate(self) -> None:
        """Bring the database to the newest schema (alembic upgrade head)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    # -------------------------------------------------------------- samples

    def record_sample(
        self, at: float, running: Sequence[Observation], clock_offset: float | None = None
    ) -> None:
        """Apply one sample: what runs at ``at``. Idempotent; all or nothing.

        ``clock_offset`` is the meter clock's (``accounting.meterclock``), kept with the
        sample so a restarted meter goes on from the same clock."""
        with self.sessions.begin() as session:
            self._upsert(session, Usage, [obs for obs in running if not obs.capacity], at)
            self._upsert(session, Capacity, [obs for obs in running if obs.capacity], at)
            # Lifetimes not seen now have ended; they were last seen at the previous sample.
            # Every one seen now was moved to ``at`` or later, so "open and last seen before
            # ``at``" is exactly the unseen (no list of keys: no bind-parameter limit).
            for table in (Usage, Capacity):
                closing = update(table).where(table.ended_at.is_(None), table.last_seen_at < at)
                session.execute(closing.values(ended_at=table.last_seen_at))
            self._set_state(session, "last_sample_at", repr(at))
            if clock_offset is not None:
                self._set_state(session, "clock_offset", repr(clock_offset))
        self._generation += 1
        self._memo = {}
        self._last_at = at if self._last_at is None else max(self._last_at, at)

    def _upsert(self, session: Session, table, observations: Sequence[Observation], at: float) -> None:
        """Insert new lifetimes and move known ones forward, a few hundred rows a statement
        (one statement per row took 1.5 s for a 2,000-user class)."""
        if not observations:
            return
        if table is Usage:
            self._rekey(session, [obs for obs in observations if obs.previous_key])
        dialect = session.get_bind().dialect.name
        insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
        rows = [
            dict(
                resource_key=obs.resource_key,
                username=obs.username,
                kind=obs.kind,
                description=obs.description,
                cpu=obs.cpu,
                memory_gib=obs.memory_gib,
                storage_gib=obs.storage_gib,
                instance_type=obs.instance_type,
                capacity_type=obs.capacity_type,
                rate_per_hour=obs.rate_per_hour,
                started_at=obs.started_at,
                last_seen_at=max(at, obs.started_at),
                ended_at=None,
                **({"node": obs.node} if table is Capacity else {}),
            )
            for obs in {obs.resource_key: obs for obs in observations}.values()
        ]
        for first in range(0, len(rows), UPSERT_CHUNK):
            statement = insert(table).values(rows[first : first + UPSERT_CHUNK])
            excluded = statement.excluded
            statement = statement.on_conflict_do_update(
                index_elements=[table.resource_key],
                set_={
                    # never backwards: an old sample replayed after a newer one changes nothing
                    "last_seen_at": case(
                        (excluded.last_seen_at > table.last_seen_at, excluded.last_seen_at),
                        else_=table.last_seen_at,
                    ),
                    "ended_at": None,
                },
            )
            session.execute(statement)

    def _rekey(self, session: Session, observations: Sequence[Observation]) -> None:
        """Continue each open row of a ``previous_key`` under its new key (once per key and
        process), so an upgrade charges no lifetime twice."""
        for obs in observations:
            if obs.resource_key in self._rekeyed:
                continue
            known = session.execute(select(Usage.id).where(Usage.resource_key == obs.resource_key)).first()
            if known is not None:  # committed under its new key: nothing more to look for
                self._rekeyed.add(obs.resource_key)
                continue
            session.execute(
                update(Usage)
                .where(Usage.resource_key == obs.previous_key, Usage.ended_at.is_(None))
                .values(resource_key=obs.resource_key)
            )

    def last_sample_at(self) -> float | None:
        with self.sessions() as session:
            row = session.get(MeterState, "last_sample_at")
            return float(row.value) if row else None

    def clock_offset(self) -> float:
        """The meter clock's offset as of the last sample (0 if never stepped)."""
        with self.sessions() as session:
            row = session.get(MeterState, "clock_offset")
            return float(row.value) if row else 0.0

    def _set_state(self, session: Session, key: str, value: str) -> None:
        row = session.get(MeterState, key)
        if row is None:
            session.add(MeterState(key=key, value=value))
        else:
            row.value = value

    # ---------------------------------------------------------------- spend

    @staticmethod
    def _overlap_seconds(start: float, end: float, table=Usage):
        """SQL: each row's seconds inside [start, end)."""
        lo = case((table.started_at > start, table.started_at), else_=start)
        hi = case((table.last_seen_at < end, table.last_seen_at), else_=end)
        return case((hi > lo, hi - lo), else_=0.0)

    @classmethod
    def _overlap_cost(cls, start: float, end: float, table=Usage):
        """SQL: each row's cost inside [start, end)."""
        return table.rate_per_hour * cls._overlap_seconds(start, end, table) / 3600.0

    def spend(self, username: str, start: float, end: float) -> float:
        """Dollars ``username`` spent in [start, end)."""
        query = select(func.coalesce(func.sum(self._overlap_cost(start, end)), 0.0)).where(
            Usage.username == username, Usage.last_seen_at > start, Usage.started_at < end
        )
        with self.sessions() as session:
            return float(session.execute(query).scalar_one())

    def spend_by_user(self, start: float, end: float, users: Iterable[str] | None = None) -> dict[str, float]:
        cost = func.sum(self._overlap_cost(start, end))
        query = (
            select(Usage.username, cost)
            .where(Usage.last_seen_at > start, Usage.started_at < end)
            .group_by(Usage.username)
        )
        if users is not None:
            query = query.where(Usage.username.in_(list(users)))
        with self.sessions() as session:
            return {name: float(total or 0.0) for name, total in session.execute(query)}

    def memo_spend(self, key: tuple, end: float, compute) -> float:
        """``compute()``, a sum over a window ending at ``end``, remembered until this ledger
        records its next sample.

        For sums every check asks and only a sample changes, such as a class's total: every
        row ends at or before the last sample this object recorded, so any window ending
        after it sums the same until the next one. Windows ending earlier are not memoised.
        """
        generation, last = self._generation, self._last_at
        if last is None or end < last:
            return compute()
        memo_key = (generation, *key)
        if memo_key not in self._memo:
            value = compute()
            if generation == self._generation:
                self._memo[memo_key] = value
            return value
        return self._memo[memo_key]

    def daily_spend(self, username: str, first: date, last: date) -> list[tuple[date, float]]:
        """Spend per UTC day from ``first`` to ``last`` included."""
        days = []
        day = first
        while day <= last:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            days.append((day, self.spend(username, start, start + 86400)))
            day += timedelta(days=1)
        return days

    def lifetimes(self, username: str | None = None, running_only: bool = False) -> list[Usage]:
        query = select(Usage).order_by(Usage.started_at)
        if username is not None:
            query = query.where(Usage.username == username)
        if running_only:
            query = query.where(Usage.ended_at.is_(None))
        with self.sessions() as session:
            return list(session.execute(query).scalars())

    # ----------------------------------------------------- events, notices

    def record_event(
        self,
        username: str,
        action: str,
        rule: str,
        message: str,
        spend_usd: float | None = None,
        cap_usd: float | None = None,
        at: float | None = None,
        merge_within: float | None = None,
    ) -> None:
        """Record an event; with ``merge_within``, the same one (user, action and rule: the
        message's figures change with the spend) recorded less than that many seconds ago is
        counted again instead, in one UPDATE (no count lost to a concurrent refusal), keeping
        the latest message and figures."""
        at = at or time.time()
        with self.sessions.begin() as session:
            if merge_within is not None:
                last = func.coalesce(Event.last_at, Event.at)
                repeated = session.execute(
                    select(Event.id)
                    .where(
                        Event.username == username,
                        Event.action == action,
                        Event.rule == rule,
                        last >= at - merge_within,
                    )
                    .order_by(Event.id.desc())
                    .limit(1)
                ).scalar_one_or_none()
                if repeated is not None:  # one row: the count, and the latest words and figures
                    session.execute(
                        update(Event)
                        .where(Event.id == repeated)
                        .values(
                            count=Event.count + 1,
                            last_at=case(
                                (func.coalesce(Event.last_at, Event.at) > at, Event.last_at), else_=at
                            ),
                            message=message,
                            spend_usd=spend_usd,
                            cap_usd=cap_usd,
                        )
                    )
                    return
            session.add(
                Event(
                    at=at,
                    username=username,
                    action=action,
                    rule=rule,
                    message=message,
                    spend_usd=spend_usd,
                    cap_usd=cap_usd,
                    count=1,
                )
            )

    def events(
        self,
        username: str | None = None,
        since: float | None = None,
        limit: int | None = None,
        before_id: int | None = None,
    ) -> list[Event]:
        """Events in time order; with ``limit``, the newest ``limit`` (before ``before_id``)."""
        query = select(Event)
        if username is not None:
            query = query.where(Event.username == username)
        if since is not None:
            query = query.where(Event.at >= since)
        if before_id is not None:
            query = query.where(Event.id < before_id)
        with self.sessions() as session:
            if limit is None:
                return list(session.execute(query.order_by(Event.at, Event.id)).scalars())
            newest = session.execute(query.order_by(Event.id.desc()).limit(limit)).scalars()
            return sorted(newest, key=lambda e: (e.at, e.id))

    def event_counts(self) -> dict[str, int]:
        """How many times each action happened (repeats included)."""
        query = select(Event.action, func.sum(Event.count)).group_by(Event.action)
        with self.sessions() as session:
            return {action: int(total or 0) for action, total in session.execute(query)}

    def running_by_user(self) -> dict[str, list[str]]:
        """The kinds of what runs now (open lifetimes), per user, in one query."""
        query = select(Usage.username, Usage.kind).where(Usage.ended_at.is_(None))
        running: dict[str, list[str]] = {}
        with self.sessions() as session:
            for username, kind in session.execute(query):
                running.setdefault(username, []).append(kind)
        return running

    def rates_by_user(self) -> dict[str, float]:
        """What runs now costs per hour, per user."""
        query = (
            select(Usage.username, func.sum(Usage.rate_per_hour))
            .where(Usage.ended_at.is_(None))
            .group_by(Usage.username)
        )
        with self.sessions() as session:
            return {username: float(rate or 0.0) for username, rate in session.execute(query)}

    def notices_claimed(self, period_keys: Iterable[str]) -> dict[tuple[str, str, float], float]:
        """When each (user, period key, threshold) of these periods was claimed."""
        keys = sorted(set(period_keys))
        if not keys:
            return {}
        query = select(Notice.username, Notice.period_key, Notice.threshold, Notice.at).where(
            Notice.period_key.in_(keys)
        )
        with self.sessions() as session:
            return {(u, k, float(t)): float(at) for u, k, t, at in session.execute(query)}

    def claim_notices(self, notices: Sequence[NewNotice], at: float) -> list[NewNotice]:
        """Claim each notice and record its event, all in one transaction; returns those
        claimed now (a notice claimed before, by this pass or a concurrent one, is skipped)."""
        if not notices:
            return []
        claimed = []
        with self.sessions.begin() as session:
            for notice in notices:
                if self._claim(session, notice.username, notice.period_key, notice.threshold, at):
                    claimed.append(notice)
                    session.add(
                        Event(
                            at=at,
                            username=notice.username,
                            action=notice.action,
                            rule=notice.rule,
                            message=notice.message,
                            spend_usd=notice.spend_usd,
                            cap_usd=notice.cap_usd,
                            count=1,
                        )
                    )
        return claimed

    @staticmethod
    def _claim(session: Session, username: str, period_key: str, threshold: float, at: float) -> bool:
        dialect = session.get_bind().dialect.name
        insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
        result = session.execute(
            insert(Notice)
            .values(username=username, period_key=period_key, threshold=threshold, at=at)
            .on_conflict_do_nothing()
            .returning(Notice.id)  # rowcount is not reliable across drivers
        )
        return result.first() is not None

    def release_notices(self, notices: Iterable[tuple[str, str, float]]) -> None:
        """Forget these (user, period key, threshold) claims, in one transaction, so that each
        can be claimed (told) again: a storage threshold is told once per crossing, and a home
        that went back under it may cross it again."""
        with self.sessions.begin() as session:
            for username, period_key, threshold in notices:
                session.execute(
                    delete(Notice).where(
                        Notice.username == username,
                        Notice.period_key == period_key,
                        Notice.threshold == threshold,
                    )
                )

    def claim_notice(self, username: str, period_key: str, threshold: float, at: float | None = None) -> bool:
        """True the first time (username, period, threshold) is claimed; False after."""
        with self.sessions.begin() as session:
            return self._claim(session, username, period_key, threshold, at or time.time())
