"""Topic tables: ``topic_counts``, comment counts per topic per time bucket (hour and day) per segment.

The pseudo-topic ``_all`` counts every comment (the denominator of shares); segment ``all`` (value ``all``)
is a topic's total. Maintained on ingest and deletion, read by ``/v1/topics`` and the alert detector.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
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
