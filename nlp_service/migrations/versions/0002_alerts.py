"""Alerts: topic-volume alerts, their representative comments and the detector's run state.

Revision ID: 0002_alerts
Revises: 0001_comments
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_alerts"
down_revision = "0001_comments"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("topic_id", sa.String(100), nullable=False),
        sa.Column("segment", sa.String(32), nullable=False),
        sa.Column("segment_value", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("bucket", sa.String(8), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("window_end", TS, nullable=False),
        sa.Column("peak_at", TS, nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("observed", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("buckets_fired", sa.Integer(), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_topic_id_kind_status", "alerts", ["topic_id", "kind", "status"])
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_index(op.f("ix_alerts_status"), "alerts", ["status"])
    op.create_table(
        "alert_comments",
        sa.Column(
            "alert_id",
            sa.String(40),
            sa.ForeignKey("alerts.id", name=op.f("fk_alert_comments_alert_id_alerts"), ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "row_id",
            ROW_ID,
            sa.ForeignKey(
                "comments.row_id", name=op.f("fk_alert_comments_row_id_comments"), ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "row_id", name=op.f("pk_alert_comments")),
    )
    op.create_table(
        "alert_detector_state",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("last_run_at", TS, nullable=True),
        sa.Column("last_summary", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_alert_detector_state")),
    )


def downgrade() -> None:
    op.drop_table("alert_detector_state")
    op.drop_table("alert_comments")
    op.drop_index(op.f("ix_alerts_status"), table_name="alerts")
    op.drop_index("ix_alerts_created_at", table_name="alerts")
    op.drop_index("ix_alerts_topic_id_kind_status", table_name="alerts")
    op.drop_table("alerts")
