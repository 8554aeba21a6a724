"""Comments, predictions, topics, attributes, keyword terms and topic counts.

Revision ID: 0001_comments
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_comments"
down_revision = None
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("row_id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("touchpoint", sa.String(100), nullable=True),
        sa.Column("region", sa.String(100), nullable=True),
        sa.Column("nps", sa.SmallInteger(), nullable=True),
        sa.Column("csat", sa.Float(), nullable=True),
        sa.Column("customer_id", sa.String(200), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("row_id", name=op.f("pk_comments")),
        sa.UniqueConstraint("id", name=op.f("uq_comments_id")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_comments_created_at_row_id", "comments", ["created_at", "row_id"])
    for col in ("source", "touchpoint", "region", "customer_id"):
        op.create_index(op.f(f"ix_comments_{col}"), "comments", [col])

    op.create_table(
        "predictions",
        sa.Column(
            "row_id",
            ROW_ID,
            sa.ForeignKey("comments.row_id", name=op.f("fk_predictions_row_id_comments"), ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sentiment_label", sa.String(16), nullable=False),
        sa.Column("sentiment_score", sa.Float(), nullable=False),
        sa.Column("sentiment_probs", sa.JSON(), nullable=False),
        sa.Column("emotion_labels", sa.JSON(), nullable=False),
        sa.Column("emotion_probs", sa.JSON(), nullable=False),
        sa.Column("dominant_emotion", sa.String(32), nullable=False),
        sa.Column("intensity", sa.Float(), nullable=False),
        sa.Column("intensities", sa.JSON(), nullable=False),
        sa.Column("valence", sa.Float(), nullable=False),
        sa.Column("arousal", sa.Float(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("n_terms", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("model_versions", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("row_id", name=op.f("pk_predictions")),
    )
    op.create_index(op.f("ix_predictions_sentiment_label"), "predictions", ["sentiment_label"])

    for table, key_cols, extra in (
        ("comment_topics", ("topic_id",), [sa.Column("score", sa.Float(), nullable=False)]),
        ("comment_attributes", ("key",), [sa.Column("value", sa.String(500), nullable=False)]),
        ("comment_terms", ("term",), [sa.Column("tf", sa.Integer(), nullable=False)]),
    ):
        key = key_cols[0]
        op.create_table(
            table,
            sa.Column(
                "row_id",
                ROW_ID,
                sa.ForeignKey(
                    "comments.row_id", name=op.f(f"fk_{table}_row_id_comments"), ondelete="CASCADE"
                ),
                nullable=False,
            ),
            sa.Column(key, sa.String(100), nullable=False),
            *extra,
            sa.PrimaryKeyConstraint("row_id", key, name=op.f(f"pk_{table}")),
        )
    op.create_index("ix_comment_topics_topic_id_row_id", "comment_topics", ["topic_id", "row_id"])
    op.create_index(
        "ix_comment_attributes_key_value_row_id", "comment_attributes", ["key", "value", "row_id"]
    )
    op.create_index("ix_comment_terms_term_row_id", "comment_terms", ["term", "row_id"])

    op.create_table(
        "topic_counts",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("topic_id", sa.String(100), nullable=False),
        sa.Column("bucket", sa.String(8), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("segment", sa.String(32), nullable=False),
        sa.Column("segment_value", sa.String(100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("negative", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topic_counts")),
        sa.UniqueConstraint(
            "topic_id", "bucket", "segment", "segment_value", "bucket_start", name="uq_topic_counts_series"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_topic_counts_bucket_bucket_start", "topic_counts", ["bucket", "bucket_start"])


def downgrade() -> None:
    for table in ("topic_counts", "comment_terms", "comment_attributes", "comment_topics", "predictions"):
        op.drop_table(table)
    op.drop_table("comments")
