"""kill -9 of a worker during detection and during delivery-result recording (PostgreSQL, two real workers).

Two ``nlp-service worker`` processes run ``alert-detection`` and ``webhook-delivery`` against PostgreSQL and
a real local HTTP receiver, while a thread acknowledges and resolves alerts concurrently. The test pins each
kill to its phase with a table lock held from here: with ``webhook_events`` locked, the worker that took the
detector's lock blocks inside its write phase (alerts inserted, events not yet) and is SIGKILLed there; with
``webhook_attempts`` locked, a worker that has sent deliveries blocks inside recording their results and is
SIGKILLed there. Each killed worker is replaced, so two keep running.

Checks: one alert per episode (no bucket alerted twice, at most one open alert per topic), revisions only
increase, nothing follows ``alert.resolved``, every outbox event reached the receiver (at least once, always
with the same ``webhook-id`` and body, correctly signed), and the delivery whose result was lost was resent.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.anomaly import service
from nlp_service.anomaly.cursor import DETECTOR
from nlp_service.anomaly.tables import Alert, AlertDetectorState
from nlp_service.config import REPO_ROOT
from nlp_service.db import make_engine, make_sessionmaker, session_scope
from nlp_service.errors import Conflict
from nlp_service.hardening.secretbox import SecretBox
from nlp_service.timestamps import floor_bucket
from nlp_service.topics.tables import TopicCount
from nlp_service.webhooks import service as webhooks
from nlp_service.webhooks.deliveries import queue_counts
from nlp_service.webhooks.safety import TargetPolicy
from nlp_service.webhooks.schemas import CreateWebhookRequest
from nlp_service.webhooks.signing import verify
from nlp_service.webhooks.tables import WebhookDelivery, WebhookEvent
from tests.webhooks.receiver import LocalReceiver

TOPICS = ["billing_payments", "delivery_shipping", "refunds_returns", "app_website"]
HISTORY_H = 14 * 24
SECRET_KEY = SecretBox.generate_key()  # the workers decrypt the subscription's secret with it
WORKER_ENV = {
    "NLP_SECRET_KEYS": SECRET_KEY,
    "NLP_ALERT_BUCKETS": '["hour"]',
    "NLP_ALERT_SEGMENTS": "[]",
    "NLP_ALERT_RESCAN_BUCKETS": "3",
    "NLP_DETECTION_INTERVAL_S": "0.3",
    "NLP_WEBHOOK_ALLOW_LOOPBACK": "true",
    "NLP_WEBHOOK_LEASE_S": "3",
    "NLP_WEBHOOK_TIMEOUT_S": "1",
    "NLP_WEBHOOK_POLL_INTERVAL_S": "0.05",
    "NLP_WEBHOOK_RETRY_SCHEDULE_S": "[0, 0.2, 0.5, 1, 1, 1, 1, 1]",
    "NLP_WEBHOOK_RETRY_JITTER": "0",
    "NLP_WORKER_SHUTDOWN_GRACE_S": "3",
    "NLP_LOG_LEVEL": "warning",
}


class Workers:
    """``nlp-service worker`` processes, each with its own ``application_name`` (seen in pg_stat_activity)."""

    def __init__(self, url: str, log_dir: Path) -> None:
        self.url, self.log_dir = url, log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: list[str] = []

    def start(self, name: str) -> None:
        sep = "&" if "?" in self.url else "?"
        env = {
            **os.environ,
            **WORKER_ENV,
            "NLP_DATABASE_URL": f"{self.url}{sep}application_name={name}",
            "PYTHONPATH": str(REPO_ROOT),
            "NLP_VAR_DIR": str(self.log_dir / "var"),
        }
        cmd = [
            sys.executable,
            "-m",
            "nlp_service.cli",
            "worker",
            "--jobs",
            "alert-detection,webhook-delivery",
        ]
        log = (self.log_dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.killed.append(name)

    def stop_all(self) -> dict[str, int | None]:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = None
        self.procs.clear()
        return codes


def blocked_on(conn: Connection, statement: str, names: list[str], timeout_s: float) -> str | None:
    """The worker whose backend waits on a lock in ``statement`` (e.g. ``INSERT INTO webhook_events``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = conn.execute(
            text(
                "SELECT application_name, query FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND application_name = ANY(:n)"
            ),
            {"n": names},
        ).all()
        conn.rollback()  # pg_stat_activity is a snapshot per transaction
        for name, query in rows:
            if query.lstrip().upper().startswith(statement):
                return str(name)
        time.sleep(0.02)
    return None


def connected(engine, names: list[str]) -> bool:  # type: ignore[no-untyped-def]
    """Whether every named worker has a connection (it has started and runs its jobs)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT DISTINCT application_name FROM pg_stat_activity WHERE application_name = ANY(:n)"),
            {"n": names},
        ).scalars()
        return set(rows) == set(names)


def hold_lock(engine, table: str) -> Connection:  # type: ignore[no-untyped-def]
    """A transaction holding ``table`` in EXCLUSIVE mode (reads pass, writes wait) until it commits."""
    conn = engine.connect()
    conn.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))
    return conn


def write_history(db: sessionmaker[Session], hour: datetime) -> None:
    rng = np.random.default_rng(5)
    rows = []
    for h in range(HISTORY_H, 0, -1):
        start = hour - timedelta(hours=h)
        counts = {t: int(c) for t, c in zip(TOPICS, rng.poisson(20, size=len(TOPICS)), strict=True)}
        counts["_all"] = sum(counts.values()) + 100
        rows += [
            {"topic_id": t, "bucket": "hour", "bucket_start": start, "segment": "all", "segment_value": "all",
             "count": c, "negative": 0}
            for t, c in counts.items()
        ]  # fmt: skip
    with session_scope(db) as s:
        s.execute(TopicCount.__table__.insert(), rows)


def set_count(db: sessionmaker[Session], start: datetime, topics: list[str], count: int) -> None:
    with session_scope(db) as s:
        for row in s.scalars(
            select(TopicCount).where(
                TopicCount.bucket == "hour", TopicCount.bucket_start == start, TopicCount.topic_id.in_(topics)
            )
        ):
            row.count = count


class Operator(threading.Thread):
    """Acknowledges and resolves alerts while the workers update them: resolve the first topic's alerts at
    once, acknowledge the second's, acknowledge then resolve the third's, leave the fourth's."""

    def __init__(self, db: sessionmaker[Session]) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.actions = 0
        self.errors: list[str] = []
        self.rng = random.Random(7)

    def run(self) -> None:
        plan = {TOPICS[0]: ("resolve",), TOPICS[1]: ("acknowledge",), TOPICS[2]: ("acknowledge", "resolve")}
        while not self.stop.is_set():
            try:
                with self.db() as s:
                    open_ = [
                        (a.id, a.topic_id, a.status)
                        for a in s.scalars(select(Alert).where(Alert.status != "resolved"))
                    ]
                for alert_id, topic, status in open_:
                    steps = plan.get(topic, ())
                    step = "acknowledge" if status == "new" and "acknowledge" in steps else None
                    if (
                        step is None
                        and "resolve" in steps
                        and (status == "acknowledged" or steps == ("resolve",))
                    ):
                        step = "resolve"
                    if step is None:
                        continue
                    time.sleep(self.rng.uniform(0, 0.15))
                    with session_scope(self.db) as s:
                        getattr(service, step)(db_session=s, alert_id=alert_id)
                    self.actions += 1
            except Conflict:
                pass
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(exc))
            time.sleep(0.05)


@pytest.fixture
def pg_url(database_url: str) -> Iterator[str]:
    if not database_url.startswith("postgresql"):
        pytest.skip("kill -9 test of the workers runs on PostgreSQL only")
    yield database_url


def wait(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow  # two worker processes started three times over: ~20-50 s
def test_kill_9_during_detection_and_delivery_recording(pg_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    if (floor_bucket(now, "hour") + timedelta(hours=1) - now).total_seconds() < 90:
        time.sleep((floor_bucket(now, "hour") + timedelta(hours=1) - now).total_seconds() + 1)
    hour = floor_bucket(datetime.now(UTC), "hour")  # the current (incomplete) bucket
    engine = make_engine(pg_url)
    db = make_sessionmaker(engine)
    workers = Workers(pg_url, tmp_path)
    operator = Operator(db)
    locks: list[Connection] = []
    try:
        write_history(db, hour)
        set_count(db, hour - timedelta(hours=2), TOPICS, 120)  # the episodes begin two buckets back
        with LocalReceiver() as rx:
            with session_scope(db) as s:
                sub, secret = webhooks.create(
                    db_session=s,
                    request=CreateWebhookRequest(url=rx.url),  # type: ignore[arg-type]
                    policy=TargetPolicy(allow_loopback=True),
                    box=SecretBox([SECRET_KEY]),
                    max_subscriptions=100,
                )
            events_lock = hold_lock(engine, "webhook_events")
            attempts_lock = hold_lock(engine, "webhook_attempts")
            locks += [events_lock, attempts_lock]
            workers.start("w1")
            workers.start("w2")

            # 1. kill -9 inside a detection run's write phase (alerts inserted, events blocked)
            with engine.connect() as watch:
                victim = blocked_on(watch, "INSERT INTO WEBHOOK_EVENTS", ["w1", "w2"], 60)
                assert victim, "no worker reached the write phase of detection"
                workers.kill(victim)
                workers.start("w3")
                events_lock.commit()
                events_lock.close()

                # 2. kill -9 while recording delivery results (the receiver already has the requests)
                victim = blocked_on(watch, "INSERT INTO WEBHOOK_ATTEMPTS", list(workers.procs), 30)
                assert victim, "no worker reached result recording"
                sent_before_kill = len(rx.requests)
                workers.kill(victim)
                workers.start("w4")
                attempts_lock.commit()
                attempts_lock.close()
            assert sent_before_kill >= 1

            def created_all() -> bool:
                with db() as s:
                    return len(list(s.scalars(select(Alert.id)))) >= len(TOPICS)

            wait(created_all, 30, "the alerts of the first episodes")

            # 3. the episodes go on while the operator acknowledges and resolves
            operator.start()
            time.sleep(0.3)
            set_count(db, hour - timedelta(hours=1), TOPICS[:2], 150)
            time.sleep(0.7)
            set_count(db, hour - timedelta(hours=1), TOPICS[2:], 150)
            written = datetime.now(UTC)

            def settled() -> bool:
                with db() as s:
                    state = s.get(AlertDetectorState, DETECTOR)
                    counts = queue_counts(db_session=s)
                ran_since = state is not None and state.last_run_at > written + timedelta(seconds=2)
                return ran_since and not counts.get("pending") and not counts.get("in_flight")

            wait(settled, 40, "detection after the last counts and an empty outbox")
            time.sleep(1.0)
            operator.stop.set()
            operator.join(10)
            wait(settled, 20, "an empty outbox after the operator stopped")
            wait(lambda: connected(engine, list(workers.procs)), 30, "both workers running")
            codes = workers.stop_all()
            received = list(rx.requests)
    finally:
        operator.stop.set()
        for conn in locks:
            conn.close()
        workers.stop_all()
        engine.dispose()

    assert workers.killed and len(workers.killed) == 2 and not operator.errors, operator.errors
    assert all(code == 0 for code in codes.values()), codes
    assert operator.actions >= 3

    with db() as s:
        alerts = list(s.scalars(select(Alert)))
        outbox = {
            e.id: e.body
            for e in s.scalars(
                select(WebhookEvent).join(WebhookDelivery, WebhookDelivery.event_id == WebhookEvent.id)
            )
        }
        statuses = {
            d.status
            for d in s.scalars(select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id))
        }
    assert statuses == {"delivered"}

    # one alert per episode: no bucket alerted twice, at most one open alert per topic
    by_topic: dict[str, list[Alert]] = defaultdict(list)
    for a in alerts:
        by_topic[a.topic_id].append(a)
    assert set(by_topic) == set(TOPICS)
    for topic, group in by_topic.items():
        fired = [tag for a in group for tag in a.explanation["fired"]]
        assert len(fired) == len(set(fired)), (topic, fired)
        assert sum(a.status != "resolved" for a in group) <= 1, topic
    (untouched,) = by_topic[TOPICS[3]]  # one alert, updated by the second bucket
    assert untouched.buckets_fired == 2 and untouched.status == "new"

    # revisions only increase; nothing after alert.resolved (outbox order = commit order of the writers)
    bodies = sorted((json.loads(b) for b in outbox.values()), key=lambda e: e["timestamp"])
    per_alert: dict[str, list[dict]] = defaultdict(list)
    for e in bodies:
        per_alert[e["data"]["alert"]["id"]].append(e)
    final = {a.id: a for a in alerts}
    assert set(per_alert) == set(final)
    for alert_id, evs in per_alert.items():
        revisions = [e["data"]["alert"]["revision"] for e in evs]
        assert revisions == sorted(set(revisions)), (alert_id, revisions)
        assert revisions[0] == 1 and revisions[-1] == final[alert_id].revision
        types = [e["type"] for e in evs]
        assert types[0] == "alert.created" and "alert.created" not in types[1:]
        if "alert.resolved" in types:
            assert types.index("alert.resolved") == len(types) - 1, types
            assert final[alert_id].status == "resolved"
    assert any(e["type"] == "alert.updated" and e["data"]["alert"]["state"] == "new" for e in bodies)
    assert any(e["type"] == "alert.resolved" for e in bodies)

    # every outbox event received, always under its own id with the same body, signed
    seen: dict[str, set[bytes]] = defaultdict(set)
    for req in received:
        verify(secret, req.headers, req.body, tolerance_s=600)
        seen[req.msg_id].add(req.body)
        assert json.loads(req.body)["id"] == req.msg_id
    assert set(seen) == set(outbox), set(outbox) ^ set(seen)
    for event_id, body in outbox.items():
        assert seen[event_id] == {body.encode()}, event_id
    assert len(received) > len(seen)  # the delivery whose result was lost with the killed worker went again
