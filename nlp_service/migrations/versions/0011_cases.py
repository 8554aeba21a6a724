"""Cases: alert owner, feedback and closing (``alerts``), the history of every case (``case_entries``), and
the notification format of webhook subscriptions.

Revision ID: 0011_cases
Revises: 0009_suggestions (re-chained after 0010 at merge)
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_cases"
down_revision = "0010_incidents"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("owner", sa.String(320), nullable=True))
        batch.add_column(sa.Column("feedback", sa.String(16), nullable=True))
        batch.add_column(sa.Column("feedback_at", TS, nullable=True))
        batch.add_column(sa.Column("closed_at", TS, nullable=True))
    op.create_table(
        "case_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target_type", sa.String(16), nullable=False),
        sa.Column("target_id", sa.String(40), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("owner", sa.String(320), nullable=True),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("feedback", sa.String(16), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_entries")),
    )
    op.create_index("ix_case_entries_target", "case_entries", ["target_type", "target_id", "id"])
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.add_column(sa.Column("format", sa.String(16), nullable=False, server_default="standard"))


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_column("format")
    op.drop_index("ix_case_entries_target", table_name="case_entries")
    op.drop_table("case_entries")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("closed_at")
        batch.drop_column("feedback_at")
        batch.drop_column("feedback")
        batch.drop_column("owner")
