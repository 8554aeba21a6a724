"""Incidents and their member alerts.

- ``incidents``: one row per group of related alerts (``incidents.grouping``); a case like an alert's
  (``cases.lifecycle``: ``new -> acknowledged -> resolved -> closed``, never reopened; owner, history in
  ``case_entries``); ``resolved_reason`` is ``manual`` or ``auto``.
- ``incident_members``: the alerts of an incident (an alert belongs to at most one), each with the reason it
  joined and its rank (``grouping.ranked``: those that may open an incident first, by excess comments,
  then score).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from nlp_service.anomaly.tables import AlertStatus, Severity
from nlp_service.db import Base, UTCDateTime

IncidentStatus = AlertStatus  # one case lifecycle with alerts: new -> acknowledged -> resolved -> closed
ResolvedReason = Literal["manual", "auto"]


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_status_created_at", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # inc_...
    status: Mapped[IncidentStatus] = mapped_column(String(16))
    severity: Mapped[Severity] = mapped_column(String(16))  # the most severe member's
    headline: Mapped[str] = mapped_column(String(300))
    segment: Mapped[str] = mapped_column(String(32))  # the field carrying it ("all" if none)
    segment_value: Mapped[str] = mapped_column(String(100))
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)  # by rank of their best member
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())  # exclusive
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # carried up from the top member
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_reason: Mapped[ResolvedReason | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(1000))
    owner: Mapped[str | None] = mapped_column(String(320))  # the case's owner (a name or e-mail)
    feedback: Mapped[str | None] = mapped_column(String(16))  # a case row's field; not set by the API yet
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IncidentMember(Base):
    __tablename__ = "incident_members"
    __table_args__ = (Index("ix_incident_members_incident_id_rank", "incident_id", "rank"),)

    alert_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    incident_id: Mapped[str] = mapped_column(String(40), ForeignKey("incidents.id", ondelete="CASCADE"))
    reason_code: Mapped[str] = mapped_column(String(16))  # grouping.ReasonCode
    reason: Mapped[str] = mapped_column(String(500))
    related_alert_id: Mapped[str | None] = mapped_column(String(40))
    rank: Mapped[int] = mapped_column(Integer)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
