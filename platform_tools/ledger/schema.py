"""The ledger's tables (SQLAlchemy 2). Changes go through alembic migrations.

Times are seconds since the epoch (UTC) as floats: interval arithmetic is then the
same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Usage(Base):
    """One lifetime of one resource (a server, a Dask scheduler or worker, a volume).

    Its cost is ``rate_per_hour x (last_seen_at - started_at) / 3600``. A sample moves
    ``last_seen_at`` forward (never back), so applying a sample twice changes nothing,
    and a sample is one transaction, so a crash applies it wholly or not at all.
    """

    __tablename__ = "usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_key: Mapped[str] = mapped_column(String(400), unique=True)
    username: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(200), default="")
    cpu: Mapped[float] = mapped_column(Float, default=0.0)
    memory_gib: Mapped[float] = mapped_column(Float, default=0.0)
    storage_gib: Mapped[float] = mapped_column(Float, default=0.0)
    instance_type: Mapped[str] = mapped_column(String(64), default="")
    capacity_type: Mapped[str] = mapped_column(String(16), default="")
    rate_per_hour: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_usage_open", "ended_at", "username"),)


class Capacity(Base):
    """One lifetime of what the cluster runs that no user is charged for: a node (its whole
    price), a class placeholder or a system pod (their share of their node by the cost rule).

    Kept apart from ``usage`` so that no user's spend, budget, report, standing or metric can
    ever count it: every user-facing sum reads ``usage`` only. The reconciliation with the
    AWS bill reads both (node-hours, idle capacity). Same lifetime rules as ``Usage``.
    """

    __tablename__ = "capacity"
    __table_args__ = (Index("ix_capacity_open", "ended_at", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_key: Mapped[str] = mapped_column(String(400), unique=True)
    username: Mapped[str] = mapped_column(String(128))  # always the reserved owner
    kind: Mapped[str] = mapped_column(String(32))  # node | placeholder | system
    node: Mapped[str] = mapped_column(String(253), default="")
    description: Mapped[str] = mapped_column(String(200), default="")
    cpu: Mapped[float] = mapped_column(Float, default=0.0)
    memory_gib: Mapped[float] = mapped_column(Float, default=0.0)
    storage_gib: Mapped[float] = mapped_column(Float, default=0.0)
    instance_type: Mapped[str] = mapped_column(String(64), default="")
    capacity_type: Mapped[str] = mapped_column(String(16), default="")
    rate_per_hour: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Event(Base):
    """Something enforcement did or said, and why: a warning, a refusal, a stop.

    The same event said again within a few minutes (a refusal the hub asks about on every
    click) adds to ``count`` and moves ``last_at`` instead of adding a row: 20,000 refusals
    once made a user's spend page load 9 MB.
    """

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_username_id", "username", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    username: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    spend_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    cap_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    last_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Notice(Base):
    """A threshold a user was told about in a budget period: each is told once."""

    __tablename__ = "notices"
    __table_args__ = (
        UniqueConstraint("username", "period_key", "threshold"),
        Index("ix_notices_period_key", "period_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128))
    period_key: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[float] = mapped_column(Float)
    at: Mapped[float] = mapped_column(Float)


class MeterState(Base):
    """Small facts about the meter itself, e.g. when it last sampled."""

    __tablename__ = "meter_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
