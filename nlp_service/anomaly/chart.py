"""``GET /v1/topics/{id}/series``: one topic's counts, shares, baseline, change points, spikes and alerts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.anomaly.detectors import Series, detect_series
from nlp_service.anomaly.posted import baseline_out, change_point_out, spike_out
from nlp_service.anomaly.rules import changepoint_detector, spike_detector
from nlp_service.anomaly.schemas import ChangePointOut, SpikeOut
from nlp_service.anomaly.series import load_series
from nlp_service.anomaly.tables import Alert
from nlp_service.config import Settings
from nlp_service.errors import InvalidInput, NotFound
from nlp_service.timestamps import BUCKET_SECONDS, floor_bucket, utcnow
from nlp_service.topics.schemas import SeriesPoint, SeriesQuery, TopicSeriesResponse
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS

MAX_CHART_POINTS = 20_000


def topic_series_chart(
    *,
    db_session: Session,
    settings: Settings,
    topic_id: str,
    query: SeriesQuery,
    known_topics: Iterable[str] = (),
) -> TopicSeriesResponse:
    """One topic's (or topic x segment's) counts, shares, baseline, change points and spikes in a range.

    The detectors see ``history`` buckets before ``since`` too, so the baseline is the one alerts used.
    """
    bucket = query.bucket
    bs = BUCKET_SECONDS[bucket]
    until = (
        floor_bucket(query.until, bucket)
        if query.until
        else floor_bucket(utcnow(), bucket) + timedelta(seconds=bs)
    )
    history = settings.alert_history_hours if bucket == "hour" else settings.alert_history_days
    since = floor_bucket(query.since, bucket) if query.since else until - timedelta(seconds=bs * history)
    n_range = int((until - since).total_seconds()) // bs
    if n_range <= 0:
        raise InvalidInput(
            "the range holds no whole bucket", detail=[{"field": "since", "message": "too late"}]
        )
    if n_range > MAX_CHART_POINTS:
        raise InvalidInput(
            f"the range holds {n_range} {bucket} buckets; at most {MAX_CHART_POINTS}",
            detail=[{"field": "since", "message": f"at most {MAX_CHART_POINTS} buckets"}],
        )
    segment = query.segment or ALL_SEGMENT
    value = query.value or ALL_SEGMENT
    start = since - timedelta(seconds=bs * history)
    ss = load_series(
        db_session=db_session,
        bucket=bucket,
        start=start,
        end=until,
        segments=[query.segment] if query.segment else [],
        topic_ids=[topic_id, ALL_TOPICS],
        segment_value=query.value,
    )
    counts = ss.counts.get((topic_id, segment, value))
    if counts is None:
        if topic_id not in set(known_topics):
            raise NotFound(
                f"topic {topic_id!r} not found", detail=[{"field": "id", "message": "not a taxonomy topic"}]
            )
        counts = np.zeros(ss.n)
    totals = ss.counts.get((ALL_TOPICS, segment, value), np.zeros(ss.n))
    offset = ss.n - ss.since_first_data().n  # detectors see the series from the first comment on
    first = ss.n - n_range
    spikes: list[SpikeOut] = []
    change_points: list[ChangePointOut] = []
    expected: list[float | None] = [None] * ss.n
    if offset < ss.n:
        series = Series(ss.timestamps()[offset:], counts[offset:], bs)
        result = detect_series(
            series,
            spike_detector=spike_detector(settings, bucket),
            changepoint_detector=changepoint_detector(bucket),
        )
        expected[offset:] = baseline_out(result)
        spikes = [
            spike_out(replace(sp, index=sp.index + offset - first))
            for sp in result.spikes
            if sp.index + offset >= first
        ]
        change_points = [
            change_point_out(replace(cp, index=cp.index + offset - first))
            for cp in result.change_points
            if cp.index + offset >= first
        ]
    points = [
        SeriesPoint(
            start=ss.time_at(i),
            count=int(counts[i]),
            total=int(totals[i]),
            share=round(float(counts[i] / totals[i]), 4) if totals[i] else None,
            expected=expected[i],
        )
        for i in range(first, ss.n)
    ]
    alert_ids = db_session.scalars(
        select(Alert.id)
        .where(Alert.topic_id == topic_id, Alert.window_end > since, Alert.window_start < until)
        .order_by(Alert.window_start)
    )
    return TopicSeriesResponse(
        topic_id=topic_id,
        bucket=bucket,
        segment=segment,
        segment_value=value,
        since=since,
        until=until,
        points=points,
        change_points=change_points,
        spikes=spikes,
        alerts=list(alert_ids),
    )
