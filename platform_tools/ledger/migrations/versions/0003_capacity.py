"""Capacity: node-hours, placeholders and system pods, kept apart from users' usage.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capacity",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("resource_key", sa.String(400), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("node", sa.String(253), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_capacity"),
        sa.UniqueConstraint("resource_key", name="uq_capacity_resource_key"),
    )
    op.create_index("ix_capacity_open", "capacity", ["ended_at", "kind"])


def downgrade() -> None:
    op.drop_index("ix_capacity_open", table_name="capacity")
    op.drop_table("capacity")
