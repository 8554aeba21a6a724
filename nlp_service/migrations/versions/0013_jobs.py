"""Jobs: the durable job framework (``jobs``, ``job_slices``, ``job_files``), the encoder of every stored
vector (``predictions.encoder``, back-filled from ``model_versions``) and the heads' stored input features
(``comment_features``) for re-scoring. Long detection re-scans move to ``jobs`` (kind ``detect``): queued or
running ones are carried over as queued, and ``detection_jobs`` goes.

Revision ID: 0013_jobs
Revises: 0012_incident_cases
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_jobs"
down_revision = "0012_incident_cases"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("slices", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_status_created_at", "jobs", ["status", "created_at"])
    op.create_index(op.f("ix_jobs_kind"), "jobs", ["kind"])
    op.create_table(
        "job_slices",
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("job_id", "seq", name=op.f("pk_job_slices")),
    )
    op.create_table(
        "job_files",
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "seq", name=op.f("pk_job_files")),
    )
    op.create_table(
        "comment_features",
        sa.Column("row_id", ROW_ID, nullable=False),
        sa.Column("spec", sa.String(160), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["row_id"],
            ["comments.row_id"],
            name=op.f("fk_comment_features_row_id_comments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("row_id", name=op.f("pk_comment_features")),
    )
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("encoder", sa.String(120), nullable=True))
        batch.create_index(op.f("ix_predictions_encoder"), ["encoder"])
    predictions = sa.table(
        "predictions", sa.column("row_id"), sa.column("model_versions", sa.JSON()), sa.column("encoder")
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(predictions.c.row_id, predictions.c.model_versions)).all()
    by_encoder: dict[str, list[object]] = {}
    for row_id, versions in rows:
        encoder = versions.get("encoder") if isinstance(versions, dict) else None
        if encoder:
            by_encoder.setdefault(str(encoder)[:120], []).append(row_id)
    for encoder, ids in by_encoder.items():
        for start in range(0, len(ids), 1000):
            bind.execute(
                predictions.update()
                .where(predictions.c.row_id.in_(ids[start : start + 1000]))
                .values(encoder=encoder)
            )

    _move_detection_jobs(bind)


def _move_detection_jobs(bind: sa.engine.Connection) -> None:
    """Queued or running re-scans become queued ``detect`` jobs; finished ones are history and go."""
    old = sa.table(
        "detection_jobs",
        sa.column("id"),
        sa.column("status"),
        sa.column("request", sa.JSON()),
        sa.column("created_at"),
    )
    jobs = sa.table(
        "jobs",
        *(sa.column(c) for c in ("id", "kind", "status", "done", "total", "slices", "cancel_requested")),
        sa.column("params", sa.JSON()),
        sa.column("attempts"),
        sa.column("created_at"),
    )
    for job_id, request, created_at in bind.execute(
        sa.select(old.c.id, old.c.request, old.c.created_at).where(old.c.status.in_(["queued", "running"]))
    ):
        bind.execute(
            jobs.insert().values(
                id=job_id,
                kind="detect",
                status="queued",
                done=0,
                total=0,
                slices=0,
                cancel_requested=False,
                params=request,
                attempts=0,
                created_at=created_at,
            )
        )
    op.drop_index("ix_detection_jobs_status_created_at", table_name="detection_jobs")
    op.drop_table("detection_jobs")


def downgrade() -> None:
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
    with op.batch_alter_table("predictions") as batch:
        batch.drop_index(op.f("ix_predictions_encoder"))
        batch.drop_column("encoder")
    op.drop_table("comment_features")
    op.drop_table("job_files")
    op.drop_table("job_slices")
    op.drop_index(op.f("ix_jobs_kind"), table_name="jobs")
    op.drop_index("ix_jobs_status_created_at", table_name="jobs")
    op.drop_table("jobs")
