"""Detection: the detector's scan cursor (catch-up) and background detection jobs (long re-scans).

Revision ID: 0007_detect
Revises: 0006_search
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_detect"
down_revision = "0006_search"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("alert_detector_state") as batch:
        batch.add_column(sa.Column("cursor", sa.JSON(), nullable=True))
    op.create_table(
        "detection_jobs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_detection_jobs")),
    )
    op.create_index("ix_detection_jobs_status_created_at", "detection_jobs", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_detection_jobs_status_created_at", table_name="detection_jobs")
    op.drop_table("detection_jobs")
    with op.batch_alter_table("alert_detector_state") as batch:
        batch.drop_column("cursor")
