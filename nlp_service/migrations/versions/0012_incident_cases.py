"""Incident cases: an incident's owner, feedback and closing, like an alert's (its history is in
``case_entries`` with ``target_type = 'incident'``).

Revision ID: 0012_incident_cases
Revises: 0011_cases
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_incident_cases"
down_revision = "0011_cases"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("owner", sa.String(320), nullable=True))
        batch.add_column(sa.Column("feedback", sa.String(16), nullable=True))
        batch.add_column(sa.Column("feedback_at", TS, nullable=True))
        batch.add_column(sa.Column("closed_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("closed_at")
        batch.drop_column("feedback_at")
        batch.drop_column("feedback")
        batch.drop_column("owner")
