"""Alerts raised by the detection job, their representative comments and the detector's run state.

- ``alerts``: one row per topic x episode (see ``anomaly.episodes`` for the dedup rule), updated while the
  episode lasts; its case (owner, lifecycle ``new -> acknowledged -> resolved -> closed``, feedback, history
  in ``case_entries``) is kept by ``nlp_service.cases``. ``emerging_topic`` alerts (topic
  ``_emerging``) come from topic discovery instead (``anomaly.emerging``).
- ``alert_comments``: the representative comments of an alert (texts are read from ``comments``, so a
  deleted comment disappears from its alerts too).
- ``alert_detector_state``: one row per detector; locked by each run's short write phase (so the writes of
  two runs never interleave), with the scan cursor: where the last run ended, per bucket size, and the
  comment row-id watermarks that find late arrivals.

Long re-scans (``POST /v1/detect`` above ``detect_sync_max_lookback_s``) are durable jobs (``jobs`` table,
kind ``detect``: ``anomaly.detect_jobs``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from nlp_service.cases.lifecycle import CASE_STATUSES, CaseStatus
from nlp_service.comments.tables import RowId
from nlp_service.db import Base, UTCDateTime

AlertStatus = CaseStatus
AlertKind = Literal["spike", "drop", "level_shift", "emerging_topic"]
Direction = Literal["up", "down"]
Severity = Literal["low", "medium", "high", "critical"]
Bucket = Literal["hour", "day"]

ALERT_STATUSES: tuple[AlertStatus, ...] = CASE_STATUSES
ALERT_KINDS: tuple[AlertKind, ...] = ("spike", "drop", "level_shift", "emerging_topic")


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_topic_id_kind_status", "topic_id", "kind", "status"),
        Index("ix_alerts_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    topic_id: Mapped[str] = mapped_column(String(100))
    segment: Mapped[str] = mapped_column(String(32))  # "all" or a segment field (region, ...)
    segment_value: Mapped[str] = mapped_column(String(100))  # "all" or the field's value
    kind: Mapped[AlertKind] = mapped_column(String(16))
    direction: Mapped[Direction] = mapped_column(String(8))
    status: Mapped[AlertStatus] = mapped_column(String(16), index=True)
    severity: Mapped[Severity] = mapped_column(String(16))
    bucket: Mapped[Bucket] = mapped_column(String(8))  # bucket size of the peak
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())  # exclusive
    peak_at: Mapped[datetime] = mapped_column(UTCDateTime())
    baseline: Mapped[float] = mapped_column(Float)  # expected count in the peak bucket
    observed: Mapped[float] = mapped_column(Float)  # observed count in the peak bucket
    score: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    buckets_fired: Mapped[int] = mapped_column(Integer, default=1)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    revision: Mapped[int] = mapped_column(Integer, default=1)  # +1 per alert.updated
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(String(1000))  # the latest note
    owner: Mapped[str | None] = mapped_column(String(320))  # a name or e-mail (free text)
    feedback: Mapped[str | None] = mapped_column(String(16))  # useful | not_useful
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertComment(Base):
    __tablename__ = "alert_comments"

    alert_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    row_id: Mapped[int] = mapped_column(
        RowId, ForeignKey("comments.row_id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(SmallInteger)
    similarity: Mapped[float] = mapped_column(Float)  # cosine to the centroid of the episode's comments


class AlertDetectorState(Base):
    __tablename__ = "alert_detector_state"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # see anomaly.cursor.ScanCursor
