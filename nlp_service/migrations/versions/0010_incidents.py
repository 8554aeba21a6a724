"""Incidents: ``incidents`` and ``incident_members`` (related alerts grouped, with why each belongs).

Revision ID: 0010_incidents
Revises: 0009_suggestions
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_incidents"
down_revision = "0009_suggestions"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("headline", sa.String(300), nullable=False),
        sa.Column("segment", sa.String(32), nullable=False),
        sa.Column("segment_value", sa.String(100), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("window_end", TS, nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolved_reason", sa.String(16), nullable=True),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index("ix_incidents_status_created_at", "incidents", ["status", "created_at"])
    op.create_table(
        "incident_members",
        sa.Column("alert_id", sa.String(40), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("reason_code", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("related_alert_id", sa.String(40), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("joined_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_incident_members_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_members_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_incident_members")),
    )
    op.create_index("ix_incident_members_incident_id_rank", "incident_members", ["incident_id", "rank"])


def downgrade() -> None:
    op.drop_index("ix_incident_members_incident_id_rank", table_name="incident_members")
    op.drop_table("incident_members")
    op.drop_index("ix_incidents_status_created_at", table_name="incidents")
    op.drop_table("incidents")
