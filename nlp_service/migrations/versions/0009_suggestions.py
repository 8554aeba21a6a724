"""Topic discovery: ``topic_suggestions`` (clusters of comments no topic claims, with their emerging alert).

Revision ID: 0009_suggestions
Revises: 0008_taxonomy
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_suggestions"
down_revision = "0008_taxonomy"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "topic_suggestions",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("window_end", TS, nullable=False),
        sa.Column("previous_start", TS, nullable=False),
        sa.Column("size", sa.Float(), nullable=False),
        sa.Column("sampled", sa.Integer(), nullable=False),
        sa.Column("previous_size", sa.Float(), nullable=False),
        sa.Column("growth", sa.Float(), nullable=False),
        sa.Column("mean_sentiment", sa.Float(), nullable=True),
        sa.Column("negative_share", sa.Float(), nullable=True),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("representatives", sa.JSON(), nullable=False),
        sa.Column("centroid", sa.LargeBinary(), nullable=False),
        sa.Column("radius", sa.Float(), nullable=False),
        sa.Column("alert_id", sa.String(40), nullable=True),
        sa.Column("topic_id", sa.String(100), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topic_suggestions")),
    )
    op.create_index("ix_topic_suggestions_status_window_end", "topic_suggestions", ["status", "window_end"])
    op.create_index("ix_topic_suggestions_alert_id", "topic_suggestions", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_topic_suggestions_alert_id", table_name="topic_suggestions")
    op.drop_index("ix_topic_suggestions_status_window_end", table_name="topic_suggestions")
    op.drop_table("topic_suggestions")
