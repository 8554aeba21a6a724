"""Aggregations over stored comments, computed in SQL (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, overload

from sqlalchemy import ColumnElement, Label, case, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from nlp_service.comments.queries import filter_conditions
from nlp_service.comments.schemas import CommentFilter
from nlp_service.comments.tables import Comment, CommentTopic, Prediction
from nlp_service.insights.schemas import (
    Nps,
    NpsGroup,
    NpsResponse,
    SentimentPoint,
    TopTopic,
    TouchpointImpact,
    TouchpointsResponse,
)

TOP_TOPICS = 3


@overload
def _r(x: float, digits: int = 4) -> float: ...
@overload
def _r(x: float | None, digits: int = 4) -> float | None: ...
def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


# -- NPS ---------------------------------------------------------------------------------------------------
def _nps_columns() -> tuple[Label[int], Label[int], Label[int]]:
    """Responses, promoters and detractors."""
    return (
        func.count(Comment.nps).label("responses"),
        func.coalesce(func.sum(case((Comment.nps >= 9, 1), else_=0)), 0).label("promoters"),
        func.coalesce(func.sum(case((Comment.nps <= 6, 1), else_=0)), 0).label("detractors"),
    )


def make_nps(responses: int | None, promoters: int | None, detractors: int | None) -> Nps:
    """NPS = % promoters (9-10) - % detractors (0-6)."""
    responses, promoters, detractors = int(responses or 0), int(promoters or 0), int(detractors or 0)
    score = 100.0 * (promoters - detractors) / responses if responses else None
    return Nps(
        nps=_r(score, 2),
        responses=responses,
        promoters=promoters,
        passives=responses - promoters - detractors,
        detractors=detractors,
    )


def time_bucket(db_session: Session, bucket: str) -> ColumnElement[Any]:
    """``created_at`` truncated to an hour/day/week (Monday)/month in UTC, for GROUP BY."""
    col = Comment.created_at
    if db_session.get_bind().dialect.name == "postgresql":
        return func.date_trunc(bucket, func.timezone("UTC", col))
    if bucket == "hour":
        return func.strftime("%Y-%m-%dT%H:00:00", col)
    if bucket == "day":
        return func.date(col)
    if bucket == "week":
        return func.date(col, "weekday 0", "-6 days")
    return func.strftime("%Y-%m-01", col)


def _key_text(value: Any, bucket: str | None) -> str:
    if value is None:
        return "unspecified"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:00:00") if bucket == "hour" else value.date().isoformat()
    return str(value)


def nps(
    *, db_session: Session, filters: CommentFilter, group_by: str = "none", bucket: str = "day"
) -> NpsResponse:
    """NPS of the comments matching ``filters``, overall and by region/source/touchpoint/topic/time."""
    base = (
        select(*_nps_columns())
        .select_from(Comment)
        .join(Prediction, Prediction.row_id == Comment.row_id)
        .where(*filter_conditions(filters), Comment.nps.is_not(None))
    )
    overall = make_nps(*db_session.execute(base).one())
    groups: list[NpsGroup] = []
    if group_by != "none":
        if group_by == "topic":
            key: ColumnElement[Any] | QueryableAttribute[Any] = CommentTopic.topic_id
            stmt = base.join(CommentTopic, CommentTopic.row_id == Comment.row_id)
        elif group_by == "time":
            key = time_bucket(db_session, bucket)
            stmt = base
        else:
            key = getattr(Comment, group_by)
            stmt = base
        rows = db_session.execute(stmt.add_columns(key.label("key")).group_by(key).order_by(key)).all()
        for row in rows:
            out = make_nps(row.responses, row.promoters, row.detractors)
            groups.append(NpsGroup(key=_key_text(row.key, bucket), **out.model_dump()))
        if group_by != "time":
            groups.sort(key=lambda g: (-g.responses, g.key))
    return NpsResponse(
        overall=overall, group_by=group_by, bucket=bucket if group_by == "time" else None, groups=groups
    )


def sentiment_trend(
    *, db_session: Session, filters: CommentFilter, bucket: str = "day"
) -> list[SentimentPoint]:
    """Per time bucket: comments, negative and positive shares and mean valence matching ``filters``."""
    key = time_bucket(db_session, bucket)
    negative = func.sum(case((Prediction.sentiment_label == "negative", 1), else_=0))
    positive = func.sum(case((Prediction.sentiment_label == "positive", 1), else_=0))
    rows = db_session.execute(
        select(key.label("key"), func.count(), negative, positive, func.avg(Prediction.valence))
        .select_from(Comment)
        .join(Prediction, Prediction.row_id == Comment.row_id)
        .where(*filter_conditions(filters))
        .group_by(key)
        .order_by(key)
    ).all()
    out = []
    for row in rows:
        n = int(row[1] or 0)
        if n:
            valence = row[4]
            out.append(
                SentimentPoint(
                    key=_key_text(row[0], bucket),
                    comments=n,
                    negative_share=_r(int(row[2] or 0) / n),
                    positive_share=_r(int(row[3] or 0) / n),
                    mean_valence=_r(float(valence) if valence is not None else None),
                )
            )
    return out


# -- touchpoints ---------------------------------------------------------------------------------------------
def touchpoint_impact(*, db_session: Session, filters: CommentFilter) -> TouchpointsResponse:
    """Per touchpoint: volume, mean emotional intensity and valence, negative share, NPS and top topics."""
    cond = filter_conditions(filters)
    negative = func.sum(case((Prediction.sentiment_label == "negative", 1), else_=0))
    rows = db_session.execute(
        select(
            Comment.touchpoint,
            func.count().label("n"),
            func.avg(Prediction.intensity).label("intensity"),
            func.avg(Prediction.valence).label("valence"),
            negative.label("negative"),
            *_nps_columns(),
        )
        .select_from(Comment)
        .join(Prediction, Prediction.row_id == Comment.row_id)
        .where(*cond)
        .group_by(Comment.touchpoint)
    ).all()
    topic_rows = db_session.execute(
        select(Comment.touchpoint, CommentTopic.topic_id, func.count())
        .select_from(Comment)
        .join(Prediction, Prediction.row_id == Comment.row_id)
        .join(CommentTopic, CommentTopic.row_id == Comment.row_id)
        .where(*cond)
        .group_by(Comment.touchpoint, CommentTopic.topic_id)
    ).all()
    by_touchpoint: dict[str | None, list[tuple[str, int]]] = defaultdict(list)
    for touchpoint, topic_id, n in topic_rows:
        by_touchpoint[touchpoint].append((topic_id, int(n)))
    total = sum(int(r.n) for r in rows)
    impacts = []
    for r in rows:
        n = int(r.n)
        top = sorted(by_touchpoint.get(r.touchpoint, []), key=lambda kv: (-kv[1], kv[0]))[:TOP_TOPICS]
        impacts.append(
            TouchpointImpact(
                touchpoint=r.touchpoint,
                comments=n,
                share=_r(n / total) if total else 0.0,
                mean_intensity=_r(r.intensity),
                mean_valence=_r(r.valence),
                negative_share=_r(int(r.negative or 0) / n) if n else 0.0,
                nps=make_nps(r.responses, r.promoters, r.detractors),
                top_topics=[TopTopic(id=t, count=c, share=_r(c / n) or 0.0) for t, c in top],
            )
        )
    impacts.sort(key=lambda t: (-t.comments, t.touchpoint or ""))
    return TouchpointsResponse(
        start=filters.start, end=filters.end, total_comments=total, touchpoints=impacts
    )
