"""PostgreSQL connection loss: the server ends the session's backend (``pg_terminate_backend``) just as it
commits an ingest, a delivery claim or a delivery result. Retries are idempotent, nothing in the outbox is
lost, and work resumes within seconds (no 30 s pause). PostgreSQL only."""

from __future__ import annotations

import asyncio
import os
import re
import time

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.db import make_engine
from nlp_service.hardening.secretbox import load_secret_box
from nlp_service.webhooks import service
from nlp_service.webhooks.deliveries import queue_counts
from nlp_service.webhooks.safety import TargetPolicy
from nlp_service.webhooks.schemas import CreateWebhookRequest
from nlp_service.webhooks.tables import WebhookAttempt, WebhookDelivery
from nlp_service.worker import Worker
from tests.webhooks.conftest import create_subscription, in_tx
from tests.webhooks.receiver import LocalReceiver

PG_URL = os.environ.get("NLP_TEST_DATABASE_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="NLP_TEST_DATABASE_URL not set (PostgreSQL only)"),
]


class BackendKiller:
    """Terminates a connection's backend, from another connection, when it is about to commit the first
    transaction that ran a statement matching ``pattern``. ``kills`` counts the terminations."""

    def __init__(self, engine: Engine, pattern: str, times: int = 1) -> None:
        self.pattern = re.compile(pattern, re.IGNORECASE)
        self.left = times
        self.kills = 0
        self.admin = make_engine(PG_URL or "")
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", lambda conn: conn.info.pop("kill_at_commit", None))

    def _statement(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if self.left and self.pattern.search(statement):
            conn.info["kill_at_commit"] = True

    def _commit(self, conn) -> None:  # type: ignore[no-untyped-def]
        if not (conn.info.pop("kill_at_commit", False) and self.left):
            return
        self.left -= 1
        pid = conn.connection.dbapi_connection.info.backend_pid
        with self.admin.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar()
        self.kills += 1

    def close(self) -> None:
        self.admin.dispose()


def run_worker_until_done(settings: Settings, sessions: sessionmaker[Session], timeout_s: float) -> float:
    """Run a real worker (job ``webhook-delivery``) until nothing is pending or in flight; seconds taken."""

    async def go() -> float:
        worker = Worker(settings, sessionmaker=sessions, jobs=["webhook-delivery"], worker_id="w-loss")
        started = time.monotonic()
        await worker.start()
        try:
            while time.monotonic() - started < timeout_s:
                await asyncio.sleep(0.05)
                counts = await asyncio.to_thread(in_tx, sessions, lambda s: queue_counts(db_session=s))
                if not counts.get("pending") and not counts.get("in_flight"):
                    break
            return time.monotonic() - started
        finally:
            await worker.stop(timeout_s=2)

    return asyncio.run(go())


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(r"^UPDATE webhook_deliveries SET status=.*claim_token", id="claim"),
        pytest.param(r"^INSERT INTO webhook_attempts", id="record"),
    ],
)
def test_delivery_survives_connection_loss(settings: Settings, moment: str) -> None:
    engine = make_engine(settings.resolved_database_url())
    sessions = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
    with LocalReceiver() as rx:
        policy = TargetPolicy(allow_loopback=True)
        request = CreateWebhookRequest(url=rx.url)
        sub, _ = create_subscription(sessions, load_secret_box(settings), request, policy)
        ids = [in_tx(sessions, lambda s: service.ping(db_session=s, webhook_id=sub.id).id) for _ in range(8)]
        killer = BackendKiller(engine, moment)
        try:
            elapsed = run_worker_until_done(settings, sessions, timeout_s=20)
        finally:
            killer.close()
        assert killer.kills == 1  # the connection really was lost at that moment
        assert elapsed < 8, elapsed  # resumed at once, not after a 30 s pause
        assert len(rx.unique_ids()) == len(ids)  # nothing lost
        assert len(rx.requests) == len(ids)  # and nothing sent twice
    statuses = in_tx(sessions, lambda s: queue_counts(db_session=s))
    attempts = in_tx(
        sessions,
        lambda s: s.execute(select(WebhookAttempt.delivery_id, func.count()).group_by("delivery_id")).all(),
    )
    numbers = in_tx(sessions, lambda s: s.scalars(select(WebhookDelivery.attempts)).all())
    engine.dispose()
    assert statuses == {"delivered": len(ids)}
    assert sorted(n for _, n in attempts) == [1] * len(ids)  # each result recorded exactly once
    assert numbers == [1] * len(ids)  # the lost claim's attempt was rolled back with it


COMMENTS = [
    {
        "id": f"loss-{i}",
        "text": f"my parcel was late again, the courier lost it ({i})",
        "created_at": "2026-11-20T10:00:00+00:00",
        "source": "email",
    }
    for i in range(5)
]


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_ingest_commit_lost_then_retried(app_client) -> None:
    engine: Engine = app_client.app.state.nlp.db.kw["bind"]
    killer = BackendKiller(engine, r"^INSERT INTO comments")
    try:
        lost = app_client.post("/v1/comments", json={"comments": COMMENTS})
    finally:
        killer.close()
    assert killer.kills == 1
    assert lost.status_code == 503 and lost.headers.get("retry-after"), lost.text  # retryable
    started = time.monotonic()
    retried = app_client.post("/v1/comments", json={"comments": COMMENTS})
    assert time.monotonic() - started < 5
    assert retried.status_code == 201 and retried.json()["created"] == len(COMMENTS), retried.text
    again = app_client.post("/v1/comments", json={"comments": COMMENTS})
    assert again.status_code == 200 and again.json()["existing"] == len(COMMENTS)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM comments WHERE id LIKE 'loss-%'")).scalar()
        counted = conn.execute(
            text("SELECT sum(count) FROM topic_counts WHERE topic_id = '_all' AND segment = 'all'")
        ).scalar()
    assert stored == len(COMMENTS)
    assert counted == 2 * len(COMMENTS)  # hour and day buckets; the lost transaction's counts are not kept
