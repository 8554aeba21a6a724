"""Episodes and dedup (one alert per topic x episode), updates while an episode lasts, the detection job.

Counts are written straight into ``topic_counts`` (no comments needed): the detector reads only them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.anomaly import episodes, flows, service
from nlp_service.anomaly.cursor import DETECTOR
from nlp_service.anomaly.rules import Firing
from nlp_service.anomaly.schemas import DetectResponse
from nlp_service.anomaly.tables import Alert, AlertDetectorState
from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.hardening.secretbox import SecretBox
from nlp_service.topics.tables import TopicCount
from nlp_service.webhooks.schemas import CreateWebhookRequest
from nlp_service.webhooks.tables import WebhookEvent
from nlp_service.worker import JobContext, load_jobs
from tests.webhooks.conftest import create_subscription

T0 = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
SETTINGS = Settings(alert_buckets=["day"], alert_segments=["region"])


def firing(
    hours: int,
    *,
    segment: str = "all",
    value: str = "all",
    score: float = 8.0,
    bucket: str = "hour",
    observed: float = 40.0,
) -> Firing:
    start = T0 + timedelta(hours=hours)
    size = timedelta(hours=1 if bucket == "hour" else 24)
    return Firing(
        bucket, "billing", segment, value, "spike", "up", start, start + size, observed, 10.0, score, 1e-9
    )


def merge(db: sessionmaker[Session], *firings: Firing) -> list[episodes.Touched]:
    with session_scope(db) as s:
        return episodes.merge_firings(db_session=s, settings=SETTINGS, firings=firings, now=T0)


def alerts(db: sessionmaker[Session]) -> list[Alert]:
    with db() as s:
        return list(s.scalars(select(Alert).order_by(Alert.window_start)))


def test_one_alert_per_episode_across_buckets_and_sizes(db_sessions: sessionmaker[Session]) -> None:
    merge(db_sessions, firing(9), firing(10), firing(0, bucket="day"), firing(12))  # gap of 1 bucket is ok
    (a,) = alerts(db_sessions)
    assert (a.window_start, a.window_end) == (T0, T0 + timedelta(days=1))
    assert a.buckets_fired == 4
    merge(db_sessions, firing(40))  # a day later: a new episode
    assert len(alerts(db_sessions)) == 2


def test_segment_firings_join_the_topic_alert(db_sessions: sessionmaker[Session]) -> None:
    merge(db_sessions, firing(9, segment="region", value="eu-west", score=20), firing(9), firing(10))
    (a,) = alerts(db_sessions)
    assert (a.segment, a.segment_value) == ("all", "all")
    assert a.explanation["segments_fired"] == ["region=eu-west"]
    assert a.score == 8.0  # the peak is the topic series' own


def test_segment_alert_only_without_topic_firing_then_promoted(db_sessions: sessionmaker[Session]) -> None:
    merge(
        db_sessions,
        firing(9, segment="region", value="eu-west", score=12),
        firing(9, segment="touchpoint", value="checkout", score=9),
    )
    (a,) = alerts(db_sessions)
    assert (a.segment, a.segment_value) == ("region", "eu-west")  # the strongest segment series
    assert a.explanation["segments_fired"] == ["touchpoint=checkout"]
    merge(db_sessions, firing(10))  # the topic's total series fires later in the episode
    (a,) = alerts(db_sessions)
    assert (a.segment, a.segment_value) == ("all", "all")
    assert "region=eu-west" in a.explanation["segments_fired"]
    assert a.explanation["segments_peak"] == {"region=eu-west": 30.0, "touchpoint=checkout": 30.0}


def test_each_segment_series_strongest_excess_is_kept(db_sessions: sessionmaker[Session]) -> None:
    """A topic alert whose regions both fired keeps each one's largest excess (``segments_peak``), so the one
    carrying most of it can carry its incident (``incidents.record.member_view``)."""
    merge(
        db_sessions,
        firing(9),
        firing(9, segment="region", value="eu-west", observed=16.0),
        firing(10, segment="region", value="us-east", observed=30.0),
        firing(11, segment="region", value="eu-west", observed=19.0),
    )
    (a,) = alerts(db_sessions)
    assert a.explanation["segments_fired"] == ["region=eu-west", "region=us-east"]
    assert a.explanation["segments_peak"] == {"region=eu-west": 9.0, "region=us-east": 20.0}


def test_a_resolved_alert_is_not_reopened(db_sessions: sessionmaker[Session]) -> None:
    merge(db_sessions, firing(9))
    (a,) = alerts(db_sessions)
    with session_scope(db_sessions) as s:
        service.resolve(db_session=s, alert_id=a.id)
    merge(db_sessions, firing(10))
    assert [x.status for x in alerts(db_sessions)] == ["resolved", "new"]


def write_counts(db: sessionmaker[Session], days: list[float], topic: str = "billing") -> None:
    with session_scope(db) as s:
        for d, n in enumerate(days):
            start = T0 + timedelta(days=d)
            for t, count in ((topic, n), ("_all", n + 200)):
                for seg, val in (("all", "all"), ("region", "eu-west")):
                    s.add(TopicCount(topic_id=t, bucket="day", bucket_start=start, segment=seg,
                                     segment_value=val, count=int(count), negative=0))  # fmt: skip


def test_detection_updates_the_alert_while_the_episode_lasts(db_sessions: sessionmaker[Session]) -> None:
    rng = np.random.default_rng(1)
    normal = list(rng.poisson(20, size=21).astype(float))
    write_counts(db_sessions, [*normal, 90.0, 120.0])
    box = SecretBox([SecretBox.generate_key()])  # nothing is sent: any key will do
    create_subscription(db_sessions, box, CreateWebhookRequest(url="http://127.0.0.1:9999/x"))

    def run(day: int) -> DetectResponse:
        with session_scope(db_sessions) as s:
            return flows.detect(db_session=s, settings=SETTINGS, at=T0 + timedelta(days=day))

    first = run(22)  # the day-21 bucket is the newest completed one
    assert (first.alerts_created, first.alerts_updated) == (1, 0)
    again = run(22)
    assert (again.alerts_created, again.alerts_updated) == (0, 0)
    second = run(23)  # the episode continues: the same alert is updated
    assert (second.alerts_created, second.alerts_updated) == (0, 1)
    (a,) = alerts(db_sessions)
    assert (a.topic_id, a.segment, a.revision, a.buckets_fired) == ("billing", "all", 2, 2)
    assert a.window_end == T0 + timedelta(days=23) and a.observed == 120.0
    # segment eu-west carries the same counts: it fired too, but only appears in the explanation
    assert a.explanation["segments_fired"] == ["region=eu-west"]
    with db_sessions() as s:
        types = [
            json.loads(b)["type"]
            for b in s.scalars(select(WebhookEvent.body).order_by(WebhookEvent.created_at))
        ]
    assert types == ["alert.created", "alert.updated"]


def test_the_worker_job_is_registered_and_runs(db_sessions: sessionmaker[Session]) -> None:
    spec = load_jobs()["alert-detection"]
    assert spec.interval(Settings(detection_interval_s=60)) == 60
    ctx = JobContext("alert-detection", SETTINGS, db_sessions, "w1", asyncio.Event())
    assert spec.fn(ctx) is None
    with db_sessions() as s:
        state = s.get(AlertDetectorState, DETECTOR)
        assert state is not None and state.last_run_at is not None
        assert state.last_summary is not None and state.last_summary["alerts_created"] == 0
