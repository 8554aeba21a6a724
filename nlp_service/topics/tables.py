"""Topic tables: ``topic_counts`` (comment counts per topic per time bucket and segment), the taxonomy's
versions and active version, re-tagging jobs, and the suggestions of topic discovery.

The pseudo-topic ``_all`` counts every comment (the denominator of shares); segment ``all`` (value ``all``)
is a topic's total. Maintained on ingest and deletion, read by ``/v1/topics`` and the alert detector.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nlp_service.comments.tables import RowId
from nlp_service.db import Base, UTCDateTime

ALL_TOPICS = "_all"  # pseudo-topic: every comment
ALL_SEGMENT = "all"  # segment of the totals
SEGMENTS = ("region", "source", "touchpoint")  # segment fields counted besides the total
BUCKETS = ("hour", "day")


class TopicCount(Base):
    """Comments per (topic, bucket size, bucket start, segment field, segment value).

    ``segment == "all"`` (value ``"all"``) is the total; ``topic_id == "_all"`` counts every comment.
    ``negative`` counts the comments predicted negative among ``count``.
    """

    __tablename__ = "topic_counts"
    __table_args__ = (
        UniqueConstraint(
            "topic_id",
            "bucket",
            "segment",
            "segment_value",
            "bucket_start",
            name="uq_topic_counts_series",
        ),
        Index("ix_topic_counts_bucket_bucket_start", "bucket", "bucket_start"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    topic_id: Mapped[str] = mapped_column(String(100))
    bucket: Mapped[str] = mapped_column(String(8))
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime())
    segment: Mapped[str] = mapped_column(String(32))
    segment_value: Mapped[str] = mapped_column(String(100))
    count: Mapped[int] = mapped_column(Integer, default=0)
    negative: Mapped[int] = mapped_column(Integer, default=0)


class TaxonomyVersion(Base):
    """One version of the taxonomy: every change (create, update, delete a topic, examples, import,
    rollback) makes a new one. ``model`` caches the built topic model (prototype embeddings and learned
    scorers, an npz) for the encoder named by ``model_key``: replicas and the re-tagger load, not rebuild."""

    __tablename__ = "taxonomy_versions"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    parent_id: Mapped[int | None] = mapped_column(RowId)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)  # Taxonomy.to_dict()
    change: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    quality: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict
    )  # per topic: method, cv precision/recall
    model: Mapped[bytes | None] = mapped_column(LargeBinary)
    model_key: Mapped[str | None] = mapped_column(String(100))


class TaxonomyState(Base):
    """The active taxonomy version (one row, ``name == "active"``) and the one before it (rollback)."""

    __tablename__ = "taxonomy_state"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    version_id: Mapped[int] = mapped_column(RowId)
    previous_id: Mapped[int | None] = mapped_column(RowId)
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RetagJob(Base):
    """Re-tagging the stored comments after an activation: claimed with a lease by the worker, progress in
    ``done``/``total`` comments."""

    __tablename__ = "topic_retag_jobs"
    __table_args__ = (Index("ix_topic_retag_jobs_status_created_at", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # retag_...
    version_id: Mapped[int] = mapped_column(RowId)
    status: Mapped[str] = mapped_column(String(16))  # queued, running, succeeded, failed, superseded
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(1000))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TopicSuggestion(Base):
    """A cluster of comments no topic claims, found by discovery (``topics.suggestions``).

    ``status``: ``open`` (the latest run's; replaced by the next run), ``superseded`` (an earlier run's, kept
    only while its emerging-topic alert is open: its centroid matches that alert in later runs) or
    ``accepted`` (turned into the topic ``topic_id``). ``representatives``: ``[{"row_id", "similarity"}]``,
    texts are read from ``comments``. ``centroid``: float32, L2-normalised; ``radius``: the cosine to the
    centroid that most members reach (previous-window comments count as members from there)."""

    __tablename__ = "topic_suggestions"
    __table_args__ = (Index("ix_topic_suggestions_status_window_end", "status", "window_end"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # sug_...
    status: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())  # exclusive
    previous_start: Mapped[datetime] = mapped_column(
        UTCDateTime()
    )  # previous window: [previous_start, start)
    size: Mapped[float] = mapped_column(Float)  # comments in the window (scaled up when sampled)
    sampled: Mapped[int] = mapped_column(Integer)  # members among the clustered sample
    previous_size: Mapped[float] = mapped_column(Float)
    growth: Mapped[float] = mapped_column(Float)  # (size + 1) / (previous_size + 1)
    mean_sentiment: Mapped[float | None] = mapped_column(Float)  # mean P(positive) - P(negative)
    negative_share: Mapped[float | None] = mapped_column(Float)
    keywords: Mapped[list[str]] = mapped_column(JSON)
    representatives: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    centroid: Mapped[bytes] = mapped_column(LargeBinary)
    radius: Mapped[float] = mapped_column(Float)
    alert_id: Mapped[str | None] = mapped_column(String(40), index=True)  # its emerging_topic alert
    topic_id: Mapped[str | None] = mapped_column(String(100))  # the topic it became (accepted)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
