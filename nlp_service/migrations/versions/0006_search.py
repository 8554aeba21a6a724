"""database_meta with a random database identity (the saved vector index is tied to it).

Revision ID: 0006_search
Revises: 0005_idempotency
Create Date: 2026-11-26
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0006_search"
down_revision = "0005_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "database_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_database_meta")),
    )
    op.bulk_insert(table, [{"key": "database_id", "value": uuid.uuid4().hex}])


def downgrade() -> None:
    op.drop_table("database_meta")
