"""Taxonomy as data: versions, the active version, re-tagging jobs; predictions record their taxonomy
version and sentence embeddings.

Revision ID: 0008_taxonomy
Revises: 0007_detect
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_taxonomy"
down_revision = "0007_detect"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "taxonomy_versions",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("parent_id", ROW_ID, nullable=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("change", sa.String(500), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=True),
        sa.Column("model_key", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_taxonomy_versions")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "taxonomy_state",
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("version_id", ROW_ID, nullable=False),
        sa.Column("previous_id", ROW_ID, nullable=True),
        sa.Column("activated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_taxonomy_state")),
    )
    op.create_table(
        "topic_retag_jobs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("version_id", ROW_ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topic_retag_jobs")),
    )
    op.create_index("ix_topic_retag_jobs_status_created_at", "topic_retag_jobs", ["status", "created_at"])
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("topics_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sentence_embeddings", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("sentence_embeddings")
        batch.drop_column("topics_version")
    op.drop_index("ix_topic_retag_jobs_status_created_at", table_name="topic_retag_jobs")
    op.drop_table("topic_retag_jobs")
    op.drop_table("taxonomy_state")
    op.drop_table("taxonomy_versions")
