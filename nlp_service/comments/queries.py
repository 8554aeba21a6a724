"""Comment reads: filters as SQL, one comment, pages (keyset cursors), row-id lookups for search, and the
comments of a window for alert explanations.

Every function takes the session keyword-only and only reads.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from nlp_service.comments.schemas import CommentFilter, CommentOut, CommentPage
from nlp_service.comments.serialize import comment_fields, to_out
from nlp_service.comments.tables import Comment, CommentAttribute, CommentTopic, Prediction
from nlp_service.errors import InvalidInput, NotFound


def filter_conditions(filters: CommentFilter | None) -> list[ColumnElement[bool]]:
    """SQL conditions for a filter, over ``comments`` joined with ``predictions``."""
    if filters is None:
        return []
    cond: list[ColumnElement[bool]] = []
    if filters.start is not None:
        cond.append(Comment.created_at >= filters.start)
    if filters.end is not None:
        cond.append(Comment.created_at < filters.end)
    for name in ("source", "touchpoint", "region"):
        values = getattr(filters, name)
        if values:
            cond.append(getattr(Comment, name).in_(values))
    if filters.sentiment:
        cond.append(Prediction.sentiment_label.in_(filters.sentiment))
    if filters.nps_min is not None:
        cond.append(Comment.nps >= filters.nps_min)
    if filters.nps_max is not None:
        cond.append(Comment.nps <= filters.nps_max)
    # Aliases: callers may join comment_topics themselves, which must not swallow the subquery's FROM.
    if filters.topic:
        topic = aliased(CommentTopic)
        cond.append(exists().where(topic.row_id == Comment.row_id, topic.topic_id.in_(filters.topic)))
    for key, value in (filters.attributes or {}).items():
        attribute = aliased(CommentAttribute)
        cond.append(
            exists().where(attribute.row_id == Comment.row_id, attribute.key == key, attribute.value == value)
        )
    return cond


def get(*, db_session: Session, comment_id: str) -> CommentOut:
    """One stored comment with its analysis; ``NotFound`` if unknown."""
    row = db_session.execute(
        select(Comment, Prediction)
        .join(Prediction, Prediction.row_id == Comment.row_id)
        .where(Comment.id == comment_id)
    ).first()
    if row is None:
        raise NotFound(f"comment {comment_id!r} not found", detail=[{"field": "id", "message": "unknown id"}])
    return to_out(*row)


def get_by_row_ids(
    *, db_session: Session, row_ids: Sequence[int], filters: CommentFilter | None = None
) -> dict[int, tuple[Comment, Prediction]]:
    """Stored comments among ``row_ids`` that pass ``filters``, keyed by row id."""
    out: dict[int, tuple[Comment, Prediction]] = {}
    ids = list(dict.fromkeys(int(r) for r in row_ids))
    cond = filter_conditions(filters)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        stmt = (
            select(Comment, Prediction)
            .join(Prediction, Prediction.row_id == Comment.row_id)
            .where(Comment.row_id.in_(chunk), *cond)
        )
        for comment, pred in db_session.execute(stmt):
            out[comment.row_id] = (comment, pred)
    return out


def filter_row_ids(*, db_session: Session, row_ids: Sequence[int], filters: CommentFilter | None) -> set[int]:
    """The row ids among ``row_ids`` of stored comments that pass ``filters`` (ids only, no rows loaded)."""
    out: set[int] = set()
    ids = list(dict.fromkeys(int(r) for r in row_ids))
    cond = filter_conditions(filters)
    for start in range(0, len(ids), 1000):
        stmt = (
            select(Comment.row_id)
            .join(Prediction, Prediction.row_id == Comment.row_id)
            .where(Comment.row_id.in_(ids[start : start + 1000]), *cond)
        )
        out.update(db_session.scalars(stmt))
    return out


def _encode_cursor(created_at: datetime, row_id: int) -> str:
    raw = json.dumps([created_at.astimezone(UTC).isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, row_id = json.loads(raw)
        when = datetime.fromisoformat(ts)
        if when.tzinfo is None or not isinstance(row_id, int):
            raise ValueError
        return when, row_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidInput(
            "cursor is malformed",
            detail=[{"field": "cursor", "message": "not a cursor from a previous page"}],
        ) from exc


def get_all(
    *, db_session: Session, filters: CommentFilter | None, limit: int = 50, cursor: str | None = None
) -> CommentPage:
    """Comments matching ``filters``, newest first, ``limit`` per page, keyset-paginated."""
    cond = filter_conditions(filters)
    if cursor:
        when, row_id = _decode_cursor(cursor)
        cond.append(or_(Comment.created_at < when, and_(Comment.created_at == when, Comment.row_id < row_id)))
    stmt = (
        select(Comment, Prediction)
        .join(Prediction, Prediction.row_id == Comment.row_id)
        .where(*cond)
        .order_by(Comment.created_at.desc(), Comment.row_id.desc())
        .limit(limit + 1)
    )
    rows = db_session.execute(stmt).all()
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1][0].created_at, page[-1][0].row_id) if len(rows) > limit else None
    return CommentPage(comments=[to_out(c, p) for c, p in page], next_cursor=next_cursor)


def matching_row_ids(*, db_session: Session, filters: CommentFilter | None, limit: int) -> list[int]:
    """Up to ``limit`` row ids of comments matching ``filters`` (any order)."""
    stmt = (
        select(Comment.row_id)
        .join(Prediction, Prediction.row_id == Comment.row_id)
        .where(*filter_conditions(filters))
        .limit(limit)
    )
    return list(db_session.scalars(stmt))


# -- series and windows for alerts ------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredComment:
    row_id: int
    id: str
    text: str
    created_at: datetime
    source: str
    touchpoint: str | None
    region: str | None
    nps: int | None
    csat: float | None
    customer_id: str | None
    attributes: dict[str, str]
    sentiment: str
    sentiment_score: float
    topics: list[dict[str, Any]]
    embedding: np.ndarray | None


def comments_in_window(
    *,
    db_session: Session,
    start: datetime,
    end: datetime,
    filters: CommentFilter | None = None,
    with_embeddings: bool = True,
    limit: int = 10_000,
) -> list[StoredComment]:
    """Comments created in ``[start, end)`` that match ``filters`` (topic, region, ...), oldest first, with
    their embeddings (float32, L2-normalised) — e.g. to explain a spike by clustering its comments."""
    base = (
        filters.model_copy(update={"start": start, "end": end})
        if filters
        else CommentFilter(start=start, end=end)
    )
    stmt = (
        select(Comment, Prediction)
        .join(Prediction, Prediction.row_id == Comment.row_id)
        .where(*filter_conditions(base))
        .order_by(Comment.created_at, Comment.row_id)
        .limit(limit)
    )
    return [
        StoredComment(
            row_id=c.row_id,
            **comment_fields(c),
            sentiment=p.sentiment_label,
            sentiment_score=p.sentiment_score,
            topics=p.topics,
            embedding=np.frombuffer(p.embedding, dtype=np.float32) if with_embeddings else None,
        )
        for c, p in db_session.execute(stmt)
    ]


def count(*, db_session: Session) -> int:
    return int(db_session.scalar(select(func.count()).select_from(Comment)) or 0)
