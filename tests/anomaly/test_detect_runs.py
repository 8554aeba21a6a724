"""Detection runs: no future ``at``, catch-up from where the last run ended, no write lock held while scanning
(long re-scans as background jobs), and no lost update against a concurrent acknowledge/resolve.

Counts are written straight into ``topic_counts`` as in ``test_episodes.py``; the detector reads only them
(and ``comments`` for the row-id watermark of late arrivals)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.anomaly import episodes, flows, phrases, rules, service
from nlp_service.anomaly.rules import Firing
from nlp_service.anomaly.schemas import DetectResponse
from nlp_service.anomaly.tables import Alert
from nlp_service.comments.tables import Comment
from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker, session_scope
from nlp_service.hardening.secretbox import SecretBox
from nlp_service.jobs.tables import Job
from nlp_service.timestamps import floor_bucket
from nlp_service.topics.tables import TopicCount
from nlp_service.webhooks.schemas import CreateWebhookRequest
from nlp_service.webhooks.tables import WebhookEvent
from tests.webhooks.conftest import create_subscription

T0 = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
SETTINGS = Settings(alert_buckets=["day"], alert_segments=["region"])


def write_counts(
    db: sessionmaker[Session], start: datetime, days: list[float], topic: str = "billing"
) -> None:
    """Daily counts from ``start`` on, for ``topic`` and for all comments, in total and in region eu-west."""
    with session_scope(db) as s:
        for d, n in enumerate(days):
            for t, count in ((topic, n), ("_all", n + 200)):
                for seg, val in (("all", "all"), ("region", "eu-west")):
                    s.add(TopicCount(topic_id=t, bucket="day", bucket_start=start + d * DAY, segment=seg,
                                     segment_value=val, count=int(count), negative=0))  # fmt: skip


def add_to_count(db: sessionmaker[Session], day: datetime, extra: int, topic: str = "billing") -> None:
    """Late arrivals: ``extra`` comments created on ``day``, ingested now (one comments row marks them)."""
    with session_scope(db) as s:
        for t in (topic, "_all"):
            for row in s.scalars(
                select(TopicCount).where(
                    TopicCount.topic_id == t, TopicCount.bucket == "day", TopicCount.bucket_start == day
                )
            ):
                row.count += extra
        s.add(Comment(id=f"late-{day:%Y%m%d}", text="late", created_at=day + timedelta(hours=3),
                      source="survey", attributes={}, payload_hash="0" * 64,
                      ingested_at=datetime.now(UTC)))  # fmt: skip


def normal(n: int, seed: int = 1, mean: float = 20) -> list[float]:
    return list(np.random.default_rng(seed).poisson(mean, size=n).astype(float))


def alerts(db: sessionmaker[Session]) -> list[Alert]:
    with db() as s:
        return list(s.scalars(select(Alert).order_by(Alert.window_start)))


def events(db: sessionmaker[Session]) -> list[dict]:
    with db() as s:
        rows = s.scalars(select(WebhookEvent.body).order_by(WebhookEvent.created_at, WebhookEvent.id))
        return [json.loads(b) for b in rows]


def subscribe(db: sessionmaker[Session]) -> None:
    box = SecretBox([SecretBox.generate_key()])  # nothing is sent: any key will do
    create_subscription(db, box, CreateWebhookRequest(url="http://127.0.0.1:9999/x"))


def detect(db: sessionmaker[Session], at: datetime, settings: Settings = SETTINGS) -> DetectResponse:
    with session_scope(db) as s:
        return flows.detect(db_session=s, settings=settings, at=at)


# -- finding 3: a future `at` ------------------------------------------------------------------------------
@pytest.fixture
def day_client(app_settings: Settings, start_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(
        update={"run_worker_in_process": False, "alert_buckets": ["day"], "alert_segments": ["region"]}
    )
    with start_app(settings) as client:
        yield client


def test_future_at_is_refused_and_raises_no_alert(day_client: TestClient, database_url: str) -> None:
    db = make_sessionmaker(engine := make_engine(database_url))
    try:
        today = floor_bucket(datetime.now(UTC), "day")
        write_counts(db, today - 28 * DAY, normal(28, mean=40))  # four normal weeks, up to yesterday
        subscribe(db)
        future = today + 3 * DAY  # today, tomorrow and the day after are empty: they would read as zeros
        r = day_client.post("/v1/detect", json={"at": future.isoformat()})
        assert r.status_code == 422, r.text
        assert "future" in r.json()["error"]
        assert alerts(db) == [] and events(db) == []
        r = day_client.post("/v1/detect", json={"at": datetime.now(UTC).isoformat()})
        assert r.status_code == 200 and r.json()["alerts_created"] == 0, r.text
    finally:
        engine.dispose()


# -- finding 13: catch up from where the last run ended ----------------------------------------------------
def test_a_gap_in_runs_is_caught_up(db_sessions: sessionmaker[Session]) -> None:
    """The worker ran on day 17, then was down until day 23: the spike of day 18 (five buckets before the
    next run) is alerted by that run."""
    days = normal(23)
    days[18] = 110.0
    write_counts(db_sessions, T0, days)
    assert detect(db_sessions, T0 + 17 * DAY).alerts_created == 0
    late = detect(db_sessions, T0 + 23 * DAY)
    assert late.alerts_created == 1, late
    (a,) = alerts(db_sessions)
    assert a.window_start == T0 + 18 * DAY and a.kind == "spike"
    assert detect(db_sessions, T0 + 23 * DAY).alerts_created == 0  # caught up: nothing new


def test_late_arriving_comments_are_scanned(db_sessions: sessionmaker[Session]) -> None:
    """Comments of day 19 arrive after the day-23 run: the next run re-scans day 19 and alerts."""
    write_counts(db_sessions, T0, normal(23))
    assert detect(db_sessions, T0 + 23 * DAY).alerts_created == 0
    add_to_count(db_sessions, T0 + 19 * DAY, 90)
    again = detect(db_sessions, T0 + 23 * DAY)
    assert again.alerts_created == 1, again
    (a,) = alerts(db_sessions)
    assert a.window_start == T0 + 19 * DAY


def test_comments_stored_before_the_first_run_are_not_late(db_sessions: sessionmaker[Session]) -> None:
    write_counts(db_sessions, T0, normal(23))
    add_to_count(db_sessions, T0 + DAY, 0)  # a comment of day 1, stored before detection ever ran
    first = detect(db_sessions, T0 + 23 * DAY)
    second = detect(db_sessions, T0 + 23 * DAY)
    assert first.buckets_checked == second.buckets_checked == 2 * second.series_scanned


def test_catch_up_is_bounded(db_sessions: sessionmaker[Session]) -> None:
    days = normal(40)
    days[20] = 110.0
    write_counts(db_sessions, T0, days)
    settings = SETTINGS.model_copy(update={"alert_max_catchup_s": 7 * 86400})
    detect(db_sessions, T0 + 15 * DAY, settings)
    out = detect(db_sessions, T0 + 40 * DAY, settings)  # day 20 is 20 days back: beyond the bound
    assert out.alerts_created == 0 and out.buckets_checked <= 7 * out.series_scanned


# -- finding 4: no lost update against a concurrent resolve (PostgreSQL) -----------------------------------
@pytest.mark.postgres
def test_detection_and_resolve_do_not_lose_updates(
    db_sessions: sessionmaker[Session], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row locking is PostgreSQL's (SQLite serializes writers)")
    write_counts(db_sessions, T0, [*normal(21), 90.0, 120.0])
    subscribe(db_sessions)
    assert detect(db_sessions, T0 + 22 * DAY).alerts_created == 1
    (a,) = alerts(db_sessions)

    in_update, release = threading.Event(), threading.Event()
    apply = episodes._apply

    def paused_apply(alert: Alert, f: Firing) -> None:
        in_update.set()  # detection has read the open alert and is about to change it
        assert release.wait(30)
        apply(alert, f)

    monkeypatch.setattr(episodes, "_apply", paused_apply)
    results: dict[str, object] = {}

    def run_detection() -> None:
        results["detect"] = detect(db_sessions, T0 + 23 * DAY)

    def run_resolve() -> None:
        with session_scope(db_sessions) as s:
            service.get(db_session=s, alert_id=a.id)  # the view loads the alert first
            results["resolved"] = service.resolve(db_session=s, alert_id=a.id).revision

    t_detect = threading.Thread(target=run_detection)
    t_detect.start()
    assert in_update.wait(30)
    t_resolve = threading.Thread(target=run_resolve)
    t_resolve.start()
    t_resolve.join(1.0)  # with row locks the resolve waits for the detection run's commit
    release.set()
    t_detect.join(30)
    t_resolve.join(30)

    (final,) = alerts(db_sessions)
    ours = [e for e in events(db_sessions) if e["data"]["alert"]["id"] == a.id]
    revisions = [e["data"]["alert"]["revision"] for e in ours]
    assert [e["type"] for e in ours] == ["alert.created", "alert.updated", "alert.resolved"], ours
    assert revisions == [1, 2, 3], revisions
    assert final.status == "resolved" and final.revision == 3 and results["resolved"] == 3


@pytest.mark.postgres
def test_a_resolve_committed_while_detection_waits_raises_no_new_alert(
    db_sessions: sessionmaker[Session], database_url: str
) -> None:
    """Detection waits for the row lock of an alert being resolved; once the resolve commits, the firings it
    covers are accounted for: no second alert for the same buckets."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locking is PostgreSQL's (SQLite serializes writers)")
    write_counts(db_sessions, T0, [*normal(21), 90.0, 120.0])
    assert detect(db_sessions, T0 + 23 * DAY).alerts_created == 1
    (a,) = alerts(db_sessions)
    resolving = db_sessions()
    service.resolve(db_session=resolving, alert_id=a.id)  # row locked, not committed yet
    out: dict[str, DetectResponse] = {}
    t = threading.Thread(target=lambda: out.update(run=detect(db_sessions, T0 + 23 * DAY)))
    t.start()
    t.join(1.0)
    assert t.is_alive()  # waiting for the alert's row lock
    resolving.commit()
    resolving.close()
    t.join(30)
    assert (out["run"].alerts_created, out["run"].alerts_updated) == (0, 0)
    assert [x.status for x in alerts(db_sessions)] == ["resolved"]


def test_firings_inside_a_resolved_alert_raise_no_new_alert(db_sessions: sessionmaker[Session]) -> None:
    """A re-scan of buckets a resolved alert already covers does not raise that episode again."""
    write_counts(db_sessions, T0, [*normal(21), 90.0, 120.0])
    assert detect(db_sessions, T0 + 23 * DAY).alerts_created == 1
    (a,) = alerts(db_sessions)
    with session_scope(db_sessions) as s:
        service.resolve(db_session=s, alert_id=a.id)
    again = detect(db_sessions, T0 + 23 * DAY)
    assert (again.alerts_created, again.alerts_updated) == (0, 0)
    assert [x.status for x in alerts(db_sessions)] == ["resolved"]


# -- finding 5: no write lock while scanning; long re-scans are background jobs -----------------------------
@pytest.fixture
def worker_client(app_settings: Settings, start_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(
        update={"alert_buckets": ["day"], "alert_segments": ["region"], "job_poll_s": 0.1}
    )
    with start_app(settings) as client:
        yield client


def ingest_during_detection(
    client: TestClient, paused: threading.Event, release: threading.Event, text: str
) -> tuple[Any, float, Any]:
    """Run detection (at day 22) in a thread; once it sets ``paused``, ingest a comment of ``text``; release
    the run (at the latest 10 s later: a run holding the write lock would otherwise wait forever). Returns
    the ingest response, how long it took, and the detection response."""
    out: dict[str, Any] = {}

    def run_detection() -> None:
        out["detect"] = client.post("/v1/detect", json={"at": (T0 + 22 * DAY).isoformat()})

    t = threading.Thread(target=run_detection)
    t.start()
    timer = threading.Timer(10, release.set)
    timer.start()
    try:
        assert paused.wait(30)
        t0 = time.monotonic()
        comment = {"id": "c-during-detect", "text": text, "created_at": T0.isoformat(), "source": "survey"}
        r = client.post("/v1/comments", json={"comments": [comment]})
        elapsed = time.monotonic() - t0
    finally:
        release.set()
        timer.cancel()
        t.join(60)
    return r, elapsed, out["detect"]


def test_ingest_is_not_blocked_by_a_detection_run(
    day_client: TestClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the SQLite write lock")
    db = make_sessionmaker(engine := make_engine(database_url))
    try:
        write_counts(db, T0, [*normal(21), 90.0])
    finally:
        engine.dispose()
    scanning, release = threading.Event(), threading.Event()
    scan_many = rules.scan_many

    def paused_scan(*args, **kw):  # type: ignore[no-untyped-def]
        scanning.set()
        assert release.wait(60)
        return scan_many(*args, **kw)

    monkeypatch.setattr(rules, "scan_many", paused_scan)
    r, elapsed, detect_r = ingest_during_detection(
        day_client, scanning, release, "the courier lost my parcel"
    )
    assert r.status_code in (200, 201), r.text
    assert elapsed < 5, f"ingest waited {elapsed:.1f}s for the detection run"
    assert detect_r.status_code == 200 and detect_r.json()["alerts_created"] == 1, detect_r.text


def test_key_phrases_are_parsed_before_the_write_lock(
    day_client: TestClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spaCy pass of an alert's key phrases (most of a run's write phase: 4.4 of 5.1 s for the demo's six
    alerts) runs in the read phase, so ingestion is not held up behind it, and is not repeated under the
    lock (the write phase looks the phrases up by their inputs)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the SQLite write lock")
    db = make_sessionmaker(engine := make_engine(database_url))
    try:
        write_counts(db, T0, [*normal(21), 90.0])
    finally:
        engine.dispose()
    usual = [f"The discount code did not apply to my order number {i}." for i in range(40)]
    incident = [f"I was charged tax on the full price, not the sale price, order {i}." for i in range(40)]

    def texts(db_session: Session, filters: Any, limit: int = 200) -> list[str]:
        # the comments behind the counts: the alert's day (its window) has the incident's, earlier weeks not
        return incident if filters.end - filters.start <= DAY else usual

    parsing, release = threading.Event(), threading.Event()
    parses: list[int] = []
    extract_terms = phrases.extract_terms

    def paused_terms(batch: list[str], model: str) -> list[set[str]]:
        parses.append(len(batch))
        parsing.set()
        assert release.wait(60)
        return extract_terms(batch, model)

    monkeypatch.setattr(phrases, "sample_texts", texts)
    monkeypatch.setattr(phrases, "extract_terms", paused_terms)
    r, elapsed, detect_r = ingest_during_detection(day_client, parsing, release, "tax on the full price")
    assert r.status_code in (200, 201), r.text
    assert elapsed < 5, f"ingest waited {elapsed:.1f}s for the key phrases of the detection run"
    assert detect_r.status_code == 200 and detect_r.json()["alerts_created"] == 1, detect_r.text
    assert parses == [80], "one spaCy pass (window and baseline) for the one alert, none again under the lock"
    (alert,) = alerts(make_sessionmaker(engine := make_engine(database_url)))
    engine.dispose()
    terms = {p["phrase"] for p in alert.explanation["key_phrases"]}
    assert {"tax", "sale price"} <= terms, terms


def test_a_long_rescan_is_a_background_job(worker_client: TestClient, database_url: str) -> None:
    db = make_sessionmaker(engine := make_engine(database_url))
    try:
        write_counts(db, T0, [*normal(21), 90.0, *normal(8, seed=2)])
    finally:
        engine.dispose()
    body = {"at": (T0 + 30 * DAY).isoformat(), "lookback_s": 20 * 86400}
    r = worker_client.post("/v1/detect", json=body)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "running") and job["id"].startswith("job_")
    assert r.headers["location"] == f"/v1/detect/jobs/{job['id']}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = worker_client.get(f"/v1/detect/jobs/{job['id']}").json()
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    assert job["result"]["alerts_created"] == 1 and job["progress"]["done"] == job["progress"]["total"]
    assert job["started_at"] and job["finished_at"]
    generic = worker_client.get(f"/v1/jobs/{job['id']}").json()  # the same job in the one job API
    assert generic["kind"] == "detect" and generic["status"] == "succeeded"
    assert generic["result"]["response"] == job["result"]
    assert worker_client.get("/v1/detect/jobs/job_nope").status_code == 404
    r = worker_client.post("/v1/detect", json={"at": (T0 + 30 * DAY).isoformat(), "lookback_s": 86400})
    assert r.status_code == 200, r.text  # a short re-scan still answers at once


def test_a_job_whose_worker_died_is_run_again_then_failed(db_sessions: sessionmaker[Session]) -> None:
    """A re-scan is one slice: a worker that died in it leaves the job to the next claim (the run is
    idempotent), and a job whose workers keep dying is failed once out of attempts."""
    from nlp_service.anomaly import detect_jobs
    from nlp_service.anomaly.schemas import DetectRequest
    from nlp_service.jobs import service as jobs

    with session_scope(db_sessions) as s:
        job_id = detect_jobs.submit(db_session=s, request=DetectRequest(lookback_s=30 * 86400)).id

    def claim(worker: str, lease_s: float = 0.0):  # type: ignore[no-untyped-def]
        with session_scope(db_sessions) as s:
            return jobs.claim(
                db_session=s, worker_id=worker, lease_s=lease_s, max_attempts=2, kinds=["detect"]
            )

    first = claim("w1")  # then w1 dies: its lease (0 s) passes
    assert first is not None and first.attempts == 1 and first.params["at"]  # `at` pinned at submission
    assert claim("w2", lease_s=600).attempts == 2  # type: ignore[union-attr]
    assert claim("w3") is None  # w2 holds a live lease
    with session_scope(db_sessions) as s:
        assert not jobs.progress(db_session=s, job=first, done=1, total=2, lease_s=600)
        assert not jobs.finish(db_session=s, job=first, status="failed", error="late")  # w1's claim is gone
    with session_scope(db_sessions) as s:
        past = datetime(2000, 1, 1, tzinfo=UTC)
        s.execute(update(Job).where(Job.id == job_id).values(claimed_until=past))
    assert claim("w3") is None  # w2 died too: out of attempts
    with db_sessions() as s:
        out = detect_jobs.to_out(detect_jobs.get(db_session=s, job_id=job_id))
    assert out.status == "failed" and "2 attempts" in (out.error or "")
