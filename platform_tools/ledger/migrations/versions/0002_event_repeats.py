"""Events count their repeats: a refusal asked again and again is one row with a count.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("count", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("last_at", sa.Float(), nullable=True))
    op.create_index("ix_events_username_id", "events", ["username", "id"])
    op.create_index("ix_notices_period_key", "notices", ["period_key"])


def downgrade() -> None:
    op.drop_index("ix_notices_period_key", table_name="notices")
    op.drop_index("ix_events_username_id", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("last_at")
        batch.drop_column("count")
