"""Activating a taxonomy version raises no alert: detection pauses while the re-tag job is queued or running
(the summary says so), and afterwards the history is consistent (no step), also for the days it catches up.

Two weeks of synthetic comments (``topics.synthetic``) tagged by version A, where ``delivery`` is a small
cluster; version B gives ``delivery`` a cluster almost four times larger. Half-way through the re-tag the
recent days already have B's counts and the older ones A's: scanned then, ``delivery`` steps up (the control
that shows the test can fail). Once the job is done, detection finds nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.anomaly import detect_jobs, flows
from nlp_service.anomaly.cursor import DETECTOR
from nlp_service.anomaly.schemas import DetectRequest
from nlp_service.anomaly.tables import Alert, AlertDetectorState
from nlp_service.comments.tables import Comment
from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.jobs import jobs as worker_job
from nlp_service.topics import jobs, retag
from nlp_service.topics import synthetic as syn
from nlp_service.worker import JobContext

T0 = datetime(2024, 3, 4, tzinfo=UTC)
DAY = timedelta(days=1)
DAYS = 14
SETTINGS = Settings(alert_buckets=["day"], alert_segments=[], retag_batch_size=500)
A = {"billing": 0, "delivery": 1, "app": 2}
B = {"billing": 0, "delivery": 2, "app": 1, "returns": 3}
WEIGHTS = np.array([100, 40, 150, 60], dtype=float)  # comments per day in clusters 0-3


def comments(n: int, c: np.ndarray, seed: int) -> np.ndarray:
    labels = np.random.default_rng(seed).choice(len(WEIGHTS), size=n, p=WEIGHTS / WEIGHTS.sum())
    return syn.clustered(labels, c, seed=seed)


def detect(db: sessionmaker[Session], at: datetime):  # type: ignore[no-untyped-def]
    with session_scope(db) as s:
        return flows.detect(db_session=s, settings=SETTINGS, at=at)


def test_activation_pauses_detection_and_the_retagged_history_raises_no_alert(
    db_sessions: sessionmaker[Session],
) -> None:
    db = db_sessions
    c = syn.centers(4, seed=3)
    per_day = int(WEIGHTS.sum())
    with session_scope(db) as s:
        _, model_a = syn.store_version(db_session=s, tax=syn.taxonomy(A), c=c)
        syn.store_comments(
            db_session=s, embeddings=comments(DAYS * per_day, c, 1), model=model_a, start=T0, span=DAYS * DAY
        )
        version_b, model_b = syn.store_version(db_session=s, tax=syn.taxonomy(B), c=c)

    first = detect(db, T0 + DAYS * DAY)  # a steady history: nothing
    assert first.series_scanned > 0 and first.firings == 0 and first.skipped is None

    with session_scope(db) as s:  # activation of B queues the re-tag
        job_id = retag.submit(db_session=s, version_id=version_b.id).id
    paused = detect(db, T0 + DAYS * DAY)
    assert paused.series_scanned == 0 and paused.alerts_created == 0
    assert paused.skipped is not None and job_id in paused.skipped
    two_phase = flows.run_detection(sessions=db, settings=SETTINGS, at=T0 + DAYS * DAY)  # the worker's path
    assert two_phase.skipped is not None and two_phase.series_scanned == 0
    with db() as s:
        state = s.get(AlertDetectorState, DETECTOR)
        assert state is not None and state.last_summary is not None
        assert job_id in state.last_summary["skipped"]

    # Control: the newest four days re-tagged, the older ones not yet: a step up of `delivery`.
    with session_scope(db) as s:
        claimed = retag.claim(db_session=s, worker_id="w1", lease_s=60, max_attempts=3)
        assert claimed is not None
        cut = s.scalar(select(func.min(Comment.row_id)).where(Comment.created_at >= T0 + (DAYS - 4) * DAY))
        model = retag.load_model(db_session=s, version_id=version_b.id)
    after, done = int(cut or 0) - 1, 0
    while True:
        with session_scope(db) as s:
            batch = retag.retag_batch(
                db_session=s,
                job=claimed,
                model=model,
                after=after,
                upto=10**9,
                limit=500,
                done=done,
                total=0,
                lease_s=60,
            )
        assert batch is not None
        if not batch.retagged:
            break
        after, done = batch.last_row_id, done + batch.retagged
    with db() as s:
        half = flows.scan(db_session=s, settings=SETTINGS, at=T0 + DAYS * DAY, lookback_s=4 * 86400)
    assert any(f.topic_id == "delivery" and f.direction == "up" for f in half.firings), half.firings

    # The job finishes (the older days too): detection resumes on a consistent history.
    ctx = JobContext("topic-retag", SETTINGS, db, "w1", asyncio.Event())
    assert jobs.run_job(ctx, claimed) == "succeeded"
    resumed = detect(db, T0 + DAYS * DAY)
    assert resumed.skipped is None and resumed.series_scanned > 0
    assert resumed.firings == 0 and resumed.alerts_created == 0

    # A day ingested on version B, then the next run catches up over it: still nothing.
    with session_scope(db) as s:
        syn.store_comments(
            db_session=s,
            embeddings=comments(per_day, c, 7),
            model=model_b,
            start=T0 + DAYS * DAY,
            span=DAY,
            prefix="new",
        )
    later = detect(db, T0 + (DAYS + 1) * DAY)
    assert later.series_scanned > 0 and later.buckets_checked > 0
    assert later.firings == 0 and later.alerts_created == 0
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 0


def test_queued_detection_jobs_wait_for_the_retag(db_sessions: sessionmaker[Session]) -> None:
    db = db_sessions
    c = syn.centers(4, seed=3)
    with session_scope(db) as s:
        _, model_a = syn.store_version(db_session=s, tax=syn.taxonomy(A), c=c)
        syn.store_comments(db_session=s, embeddings=comments(200, c, 1), model=model_a, start=T0, span=DAY)
        version_b, _ = syn.store_version(db_session=s, tax=syn.taxonomy(B), c=c)
        retag.submit(db_session=s, version_id=version_b.id)
        scan_job = detect_jobs.submit(db_session=s, request=DetectRequest(at=T0 + 2 * DAY, lookback_s=86400))
    ctx = JobContext("background-jobs", SETTINGS, db, "w1", asyncio.Event())
    assert worker_job.run_background_jobs(ctx) is None  # deferred while the re-tag is queued
    with db() as s:
        waiting = detect_jobs.get(db_session=s, job_id=scan_job.id)
        assert waiting.status == "queued" and waiting.attempts == 0  # no attempt spent waiting
    assert jobs.run_retag_jobs(JobContext("topic-retag", SETTINGS, db, "w1", asyncio.Event())) == 0.0
    assert worker_job.run_background_jobs(ctx) == 0.0
    with db() as s:
        done = detect_jobs.get(db_session=s, job_id=scan_job.id)
        assert done.status == "succeeded" and done.attempts == 1
        assert done.result is not None and done.result["response"]["skipped"] is None
