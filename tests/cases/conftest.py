"""Case test fixtures: the app on the fake engine with stored alerts and a webhook subscriber (the outbox)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nlp_service.anomaly.tables import Alert
from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker, session_scope
from nlp_service.webhooks.tables import WebhookEvent
from tests.webhooks.receiver import LocalReceiver

TOPIC = "pricing_promotions"  # a topic of the shipped taxonomy


@pytest.fixture
def case_settings(app_settings: Settings) -> Settings:
    return app_settings.model_copy(update={"run_worker_in_process": False, "webhook_allow_loopback": True})


@pytest.fixture
def case_client(case_settings: Settings, start_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with LocalReceiver() as rx, start_app(case_settings) as client:
        r = client.post("/v1/webhooks", json={"url": rx.url})  # a subscriber: events reach the outbox
        assert r.status_code == 201, r.text
        yield client


def add_alert(
    database_url: str,
    *,
    topic: str = TOPIC,
    kind: str = "spike",
    status: str = "new",
    age: timedelta = timedelta(hours=1),
) -> str:
    """Store an alert created ``age`` ago; returns its id."""
    created = datetime.now(UTC) - age
    alert_id = f"alr_{uuid.uuid4().hex[:12]}"
    engine = make_engine(database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            s.add(
                Alert(
                    id=alert_id,
                    topic_id=topic,
                    segment="region",
                    segment_value="eu-west",
                    kind=kind,
                    direction="up",
                    status=status,
                    severity="high",
                    bucket="day",
                    window_start=created - timedelta(days=1),
                    window_end=created,
                    peak_at=created - timedelta(days=1),
                    baseline=11.6,
                    observed=60.0,
                    score=9.5,
                    p_value=1e-9,
                    buckets_fired=1,
                    explanation={
                        "summary": "pricing complaints x5 in eu-west",
                        "key_phrases": ["tax"],
                        "sample_comment_ids": [],
                        "severity_rule": "test alert",
                    },
                    revision=1,
                    created_at=created,
                    updated_at=created,
                )
            )
    finally:
        engine.dispose()
    return alert_id


def outbox(database_url: str) -> list[dict]:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as s:
            bodies = s.scalars(select(WebhookEvent.body).order_by(WebhookEvent.created_at, WebhookEvent.id))
            return [json.loads(b) for b in bodies]
    finally:
        engine.dispose()
