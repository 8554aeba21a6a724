"""Topic counts: the upserts ingest and deletion make, the series reads detection and charts make, and the
per-topic volumes of ``GET /v1/topics``. Takes the session keyword-only and never commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from nlp_service.db import dialect_insert
from nlp_service.timestamps import floor_bucket
from nlp_service.topics.schemas import TopicCountOut, TopicsResponse
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS, BUCKETS, SEGMENTS, TopicCount
from nlp_service.topics.taxonomy import Taxonomy

CHUNK = 200  # rows per multi-row INSERT (keeps bound parameters far below SQLite/PostgreSQL limits)
CountKey = tuple[str, str, datetime, str, str]  # (topic, bucket, bucket start, segment, segment value)


# -- counts ----------------------------------------------------------------------------------------------
def count_keys(
    topic_ids: Sequence[str], created_at: datetime, segments: Mapping[str, str | None]
) -> list[CountKey]:
    """The series a comment counts in: every bucket size, its topics and ``_all``, the total and each
    segment field it has a value for."""
    keys = []
    for bucket in BUCKETS:
        start = floor_bucket(created_at, bucket)
        for topic in (ALL_TOPICS, *topic_ids):
            keys.append((topic, bucket, start, ALL_SEGMENT, ALL_SEGMENT))
            for seg in SEGMENTS:
                value = segments.get(seg)
                if value is not None:
                    keys.append((topic, bucket, start, seg, value))
    return keys


def add_counts(*, db_session: Session, counts: Mapping[CountKey, Sequence[int]]) -> None:
    """Upsert ``count += n, negative += neg`` for each series key (``counts[key] = (n, neg)``), in a fixed
    key order (no deadlocks between writers)."""
    if not counts:
        return
    rows = [
        {
            "topic_id": k[0],
            "bucket": k[1],
            "bucket_start": k[2],
            "segment": k[3],
            "segment_value": k[4],
            "count": n,
            "negative": neg,
        }
        for k, (n, neg) in sorted(
            counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3], kv[0][4])
        )
    ]
    table = cast(Table, TopicCount.__table__)  # Core: a plain executemany, no ORM bulk bookkeeping
    stmt = dialect_insert(db_session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["topic_id", "bucket", "segment", "segment_value", "bucket_start"],
        set_={
            "count": table.c.count + stmt.excluded.count,
            "negative": table.c.negative + stmt.excluded.negative,
        },
    )
    for start in range(0, len(rows), CHUNK):
        db_session.execute(stmt, rows[start : start + CHUNK])


def remove_counts(*, db_session: Session, keys: Sequence[CountKey], negative: int) -> None:
    """Decrement ``count`` by one and ``negative`` by ``negative`` for each key (a deleted comment)."""
    for topic, bucket, start, seg, value in sorted(keys):
        db_session.execute(
            update(TopicCount)
            .where(
                TopicCount.topic_id == topic,
                TopicCount.bucket == bucket,
                TopicCount.segment == seg,
                TopicCount.segment_value == value,
                TopicCount.bucket_start == start,
            )
            .values(count=TopicCount.count - 1, negative=TopicCount.negative - negative)
        )


# -- series ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CountPoint:
    topic_id: str
    segment: str
    segment_value: str
    bucket_start: datetime
    count: int
    negative: int


def topic_series(
    *,
    db_session: Session,
    bucket: str,
    start: datetime,
    end: datetime,
    topic_ids: Sequence[str] | None = None,
    segment: str = ALL_SEGMENT,
    segment_value: str | None = None,
) -> list[CountPoint]:
    """Stored counts in ``[start, end)`` for a bucket size (``hour``/``day``), ordered by series then time.

    Buckets with no comment have no row (treat them as 0). ``topic_ids=None`` returns every topic including
    ``_all`` (the total volume); ``segment="region"`` with ``segment_value=None`` returns every region.
    """
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {BUCKETS}")
    cond = [
        TopicCount.bucket == bucket,
        TopicCount.bucket_start >= start,
        TopicCount.bucket_start < end,
        TopicCount.segment == segment,
    ]
    if topic_ids is not None:
        cond.append(TopicCount.topic_id.in_(list(topic_ids)))
    if segment_value is not None:
        cond.append(TopicCount.segment_value == segment_value)
    stmt = (
        select(TopicCount)
        .where(*cond)
        .order_by(TopicCount.topic_id, TopicCount.segment_value, TopicCount.bucket_start)
    )
    return [
        CountPoint(r.topic_id, r.segment, r.segment_value, r.bucket_start, r.count, r.negative)
        for r in db_session.scalars(stmt)
    ]


# -- volumes ---------------------------------------------------------------------------------------------
def topic_volumes(
    *, db_session: Session, taxonomy: Taxonomy, start: datetime | None, end: datetime | None
) -> TopicsResponse:
    """Every taxonomy topic with its comment and negative counts in ``[start, end)``, most frequent first.

    Read from the hourly ``topic_counts``, so the range is effectively rounded to whole hours.
    """
    cond = [TopicCount.bucket == "hour", TopicCount.segment == ALL_SEGMENT]
    if start is not None:
        cond.append(TopicCount.bucket_start >= start)
    if end is not None:
        cond.append(TopicCount.bucket_start < end)
    rows = db_session.execute(
        select(TopicCount.topic_id, func.sum(TopicCount.count), func.sum(TopicCount.negative))
        .where(*cond)
        .group_by(TopicCount.topic_id)
    ).all()
    counts = {topic: (int(n or 0), int(neg or 0)) for topic, n, neg in rows}
    total = counts.pop(ALL_TOPICS, (0, 0))[0]
    topics = [
        TopicCountOut(
            id=t.id,
            name=t.name,
            description=t.description,
            parent=t.parent,
            count=counts.get(t.id, (0, 0))[0],
            negative=counts.get(t.id, (0, 0))[1],
            share=round(counts.get(t.id, (0, 0))[0] / total, 4) if total else 0.0,
        )
        for t in taxonomy.topics
    ]
    topics.sort(key=lambda t: -t.count)
    return TopicsResponse(
        taxonomy={"name": taxonomy.name, "version": taxonomy.version},
        start=start,
        end=end,
        total_comments=total,
        topics=topics,
    )
