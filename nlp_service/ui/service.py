"""The overview aggregate: what the dashboard's first page shows, read in one request.

A read-only flow across domains (topics' counts and series, alerts, insights), calling each domain's service.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nlp_service.anomaly import service as alerts
from nlp_service.anomaly.chart import topic_series_chart
from nlp_service.anomaly.schemas import AlertsQuery
from nlp_service.anomaly.tables import Bucket
from nlp_service.comments.schemas import CommentFilter
from nlp_service.comments.tables import Comment
from nlp_service.config import Settings
from nlp_service.incidents import service as incidents
from nlp_service.incidents.schemas import IncidentsQuery
from nlp_service.insights import service as insights
from nlp_service.timestamps import utcnow
from nlp_service.topics import service as topics
from nlp_service.topics.schemas import SeriesQuery
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS
from nlp_service.topics.taxonomy import Taxonomy
from nlp_service.ui.schemas import (
    AlertMarker,
    BandPoint,
    IncidentMarker,
    OverviewOut,
    OverviewQuery,
    SentimentPoint,
    TopicTrend,
)

SEGMENT_FIELDS = ("region", "touchpoint", "source")
MAX_SEGMENT_VALUES = 50
MAX_INCIDENTS = 50  # marked on the overview's chart


def band(expected: float | None) -> tuple[float | None, float | None]:
    """The expected count's ~95% band under a Poisson model: expected -/+ 2 sqrt(expected), floored at 0."""
    if expected is None:
        return None, None
    spread = 2 * math.sqrt(max(expected, 0.0))
    return round(max(expected - spread, 0.0), 3), round(expected + spread, 3)


def period_end(db_session: Session, end: datetime | None) -> datetime:
    """``end``, or the midnight after the newest comment (demo data may lie in the past), or tomorrow."""
    if end is None:
        newest = db_session.scalar(select(func.max(Comment.created_at)))
        end = newest if newest is not None else utcnow()
        end = end.replace(tzinfo=end.tzinfo or UTC)
        return end.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return end


def segment_values(db_session: Session, start: datetime, end: datetime) -> dict[str, list[str]]:
    """Each segment field's values with comments in ``[start, end)`` (for the filter menus), most frequent
    first; read from the daily counts, not the comments."""
    out: dict[str, list[str]] = {}
    for name in SEGMENT_FIELDS:
        totals: dict[str, int] = defaultdict(int)
        for point in topics.topic_series(
            db_session=db_session, bucket="day", start=start, end=end, topic_ids=[ALL_TOPICS], segment=name
        ):
            totals[point.segment_value] += point.count
        out[name] = sorted(totals, key=lambda v: (-totals[v], v))[:MAX_SEGMENT_VALUES]
    return out


def sentiment_trend(
    db_session: Session,
    bucket: Bucket,
    start: datetime,
    end: datetime,
    segment: str | None,
    value: str | None,
) -> list[SentimentPoint]:
    """Comments and their negative share per bucket (of one segment value, if given), from the counts."""
    points = topics.topic_series(
        db_session=db_session,
        bucket=bucket,
        start=start,
        end=end,
        topic_ids=[ALL_TOPICS],
        segment=segment or ALL_SEGMENT,
        segment_value=value if segment else ALL_SEGMENT,
    )
    return [
        SentimentPoint(
            start=p.bucket_start,
            comments=p.count,
            negative_share=round(p.negative / p.count, 4) if p.count else None,
        )
        for p in points
    ]


def incidents_in(
    db_session: Session,
    settings: Settings,
    labels: Mapping[str, str],
    query: OverviewQuery,
    start: datetime,
    end: datetime,
) -> list[IncidentMarker]:
    """The incidents whose window meets ``[start, end)``, newest first; with a segment filter, those carried
    by every segment or by the chosen value."""
    page = incidents.get_all(
        db_session=db_session,
        query=IncidentsQuery(since=start, until=end, limit=MAX_INCIDENTS),
        settings=settings,
        labels=labels,
    )
    return [
        IncidentMarker(**i.model_dump(include=set(IncidentMarker.model_fields)))
        for i in page.incidents
        if query.segment is None
        or i.segment == ALL_SEGMENT
        or (i.segment, i.segment_value) == (query.segment, query.value)
    ]


def overview(
    *,
    db_session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    labels: Mapping[str, str],
    query: OverviewQuery,
    scopes: Collection[str],
) -> OverviewOut:
    """Top topics' series with the expected band, change points and spikes, the alerts and incidents in the
    period, and the sentiment and NPS trends; sections that need the ``alerts`` scope are left out without
    it."""
    end = period_end(db_session, query.end)
    start = end - timedelta(days=query.days)
    bucket: Bucket = "hour" if query.days <= 2 else "day"
    segment_filter = {query.segment: [query.value]} if query.segment else {}
    filters = CommentFilter.model_validate({"start": start, "end": end, **segment_filter})
    needs: list[str] = []
    trends: list[TopicTrend] = []
    markers: list[AlertMarker] = []
    incident_markers: list[IncidentMarker] = []
    if "alerts" in scopes:
        volumes = topics.topic_volumes(db_session=db_session, taxonomy=taxonomy, start=start, end=end)
        series_query = SeriesQuery(
            bucket=bucket, segment=query.segment, value=query.value, since=start, until=end
        )
        for topic in [t for t in volumes.topics if t.count > 0][: query.topics]:
            chart = topic_series_chart(
                db_session=db_session,
                settings=settings,
                topic_id=topic.id,
                query=series_query,
                known_topics=labels,
            )
            points = [
                BandPoint(start=p.start, count=p.count, expected=p.expected, low=None, high=None)
                for p in chart.points
            ]
            for point in points:
                point.low, point.high = band(point.expected)
            trends.append(
                TopicTrend(
                    topic_id=topic.id,
                    label=labels.get(topic.id, topic.id),
                    total=sum(p.count for p in points),
                    points=points,
                    change_points=chart.change_points,
                    spikes=chart.spikes,
                )
            )
        page = alerts.get_all(
            db_session=db_session,
            settings=settings,
            query=AlertsQuery(since=start, until=end, limit=200),
            topic_labels=labels,
        )
        markers = [
            AlertMarker(**a.model_dump(include=set(AlertMarker.model_fields)))
            for a in page.alerts
            if a.segment == "all" or (a.segment, a.segment_value) == (query.segment, query.value)
        ]
        incident_markers = incidents_in(db_session, settings, labels, query, start, end)
    else:
        needs.append("alerts")
    return OverviewOut(
        start=start,
        end=end,
        bucket=bucket,
        segment=query.segment,
        value=query.value,
        segments=segment_values(db_session, start, end),
        topics=trends,
        alerts=markers,
        incidents=incident_markers,
        sentiment=sentiment_trend(db_session, bucket, start, end, query.segment, query.value),
        nps=insights.nps(db_session=db_session, filters=filters, group_by="time", bucket=bucket).groups,
        needs=needs,
    )
