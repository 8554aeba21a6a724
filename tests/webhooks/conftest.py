"""Webhook test fixtures: a fresh database per test (SQLite file, or a PostgreSQL schema when
``NLP_TEST_DATABASE_URL`` is set), fast settings, a real local receiver and a small API app."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.db import Base, make_engine, make_sessionmaker, session_scope
from nlp_service.errors import install_error_handlers
from nlp_service.hardening.secretbox import SecretBox, load_secret_box
from nlp_service.state import AppState
from nlp_service.webhooks import service, tables
from nlp_service.webhooks.runner import DeliveryRunner
from nlp_service.webhooks.safety import TargetPolicy
from nlp_service.webhooks.schemas import CreateWebhookRequest
from nlp_service.webhooks.views import router
from tests.webhooks.receiver import LocalReceiver

WEBHOOK_TABLES = [
    tables.WebhookSubscription.__table__,
    tables.WebhookEvent.__table__,
    tables.WebhookDelivery.__table__,
    tables.WebhookAttempt.__table__,
]
PG_URL = os.environ.get("NLP_TEST_DATABASE_URL")


def create_webhook_tables(url: str) -> None:
    engine = make_engine(url)
    Base.metadata.create_all(engine, tables=WEBHOOK_TABLES)
    engine.dispose()


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A database holding just the webhook tables, private to this test."""
    if not PG_URL:
        url = f"sqlite:///{(tmp_path / 'webhooks.db').as_posix()}"
        create_webhook_tables(url)
        yield url
        return
    schema = f"wh_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    create_webhook_tables(url)
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=db_url,
        run_worker_in_process=False,
        webhook_allow_loopback=True,
        webhook_retry_schedule_s=[0, 0.05, 0.1],
        webhook_retry_jitter=0.0,
        webhook_timeout_s=2.0,
        webhook_lease_s=5.0,
        webhook_poll_interval_s=0.02,
    )


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    """What the app and the worker of these settings seal secrets with (the key file under var_dir)."""
    return load_secret_box(settings)


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.resolved_database_url())
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as rx:
        yield rx


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    """The webhooks router on a bare app (no models, no auth)."""
    app = FastAPI()
    install_error_handlers(app)
    app.state.nlp = AppState(settings=settings, db=sessions)
    app.include_router(router, prefix="/v1")
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def drain(settings: Settings, sessions: sessionmaker[Session]):
    """``drain()`` runs a delivery runner until the outbox is empty (or ``timeout_s``)."""

    def run(timeout_s: float = 10.0, **overrides) -> None:
        cfg = settings.model_copy(update=overrides)

        async def go() -> None:
            runner = DeliveryRunner(sessionmaker=sessions, settings=cfg, worker_id="test-worker")
            try:
                await runner.drain(timeout_s=timeout_s)
            finally:
                await runner.aclose(grace_s=1.0)

        asyncio.run(go())

    return run


def in_tx(sessions: sessionmaker[Session], fn):  # type: ignore[no-untyped-def]
    with session_scope(sessions) as db_session:
        return fn(db_session)


def create_subscription(
    sessions: sessionmaker[Session],
    box: SecretBox,
    request: CreateWebhookRequest,
    policy: TargetPolicy = TargetPolicy(allow_loopback=True),
) -> tuple[tables.WebhookSubscription, str]:
    """``service.create`` in its own transaction: the subscription and its secret."""
    return in_tx(
        sessions,
        lambda s: service.create(
            db_session=s, request=request, policy=policy, box=box, max_subscriptions=1000
        ),
    )
