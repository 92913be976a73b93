"""The ledger: usage lifetimes, enforcement events, notices, meter state.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("resource_key", sa.String(400), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("memory_gib", sa.Float(), nullable=False),
        sa.Column("storage_gib", sa.Float(), nullable=False),
        sa.Column("instance_type", sa.String(64), nullable=False),
        sa.Column("capacity_type", sa.String(16), nullable=False),
        sa.Column("rate_per_hour", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_usage"),
        sa.UniqueConstraint("resource_key", name="uq_usage_resource_key"),
    )
    op.create_index("ix_usage_username", "usage", ["username"])
    op.create_index("ix_usage_open", "usage", ["ended_at", "username"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("spend_usd", sa.Float(), nullable=True),
        sa.Column("cap_usd", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_username", "events", ["username"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("period_key", sa.String(64), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notices"),
        sa.UniqueConstraint("username", "period_key", "threshold", name="uq_notices_username"),
    )
    op.create_table(
        "meter_state",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meter_state"),
    )


def downgrade() -> None:
    op.drop_table("meter_state")
    op.drop_table("notices")
    op.drop_index("ix_events_username", table_name="events")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_usage_open", table_name="usage")
    op.drop_index("ix_usage_username", table_name="usage")
    op.drop_table("usage")
