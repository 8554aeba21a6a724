"""Incident events on the wire: documented in the OpenAPI ``webhooks`` section, delivered to a real local
receiver, signed so that the ``standardwebhooks`` reference package verifies them, shaped as documented."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from nlp_service.config import Settings
from nlp_service.hardening.secretbox import load_secret_box
from nlp_service.main import create_app
from nlp_service.webhooks import service
from nlp_service.webhooks.payloads import IncidentEvent
from nlp_service.webhooks.runner import DeliveryRunner
from nlp_service.webhooks.safety import TargetPolicy
from nlp_service.webhooks.schemas import CreateWebhookRequest
from tests.conftest import FakeEngine
from tests.incidents.test_record import T0, H, make_alert, run
from tests.webhooks.receiver import LocalReceiver

INCIDENT_TYPES = ["incident.created", "incident.updated", "incident.resolved"]


def test_incident_events_are_documented(tmp_path: Path) -> None:
    app = create_app(Settings(var_dir=tmp_path / "var"), engine=FakeEngine())
    doc = app.openapi()
    for name in INCIDENT_TYPES:
        body = doc["webhooks"][name]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["$ref"].endswith("/IncidentEvent"), body
    props = doc["components"]["schemas"]["IncidentPayload"]["properties"]
    assert {"headline", "members", "severity", "segment", "summary", "resolved_reason"} <= set(props)
    assert "reason" in doc["components"]["schemas"]["IncidentMemberPayload"]["properties"]
    assert "/v1/incidents/{incident_id}/resolve" in doc["paths"]


def test_delivered_incident_event_verifies(
    db_sessions: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=database_url,
        run_worker_in_process=False,
        webhook_allow_loopback=True,
        webhook_retry_schedule_s=[0, 0.05],
        webhook_retry_jitter=0.0,
        webhook_poll_interval_s=0.02,
    )
    box = load_secret_box(settings)
    with LocalReceiver() as rx:
        with db_sessions.begin() as s:
            request = CreateWebhookRequest(url=rx.url, event_types=INCIDENT_TYPES)  # type: ignore[arg-type]
            _, secret = service.create(
                db_session=s,
                request=request,
                policy=TargetPolicy(allow_loopback=True),
                box=box,
                max_subscriptions=10,
            )
            (iid,) = run(
                s, [make_alert("pricing", 0), make_alert("billing", 1, observed=30)], T0 + 4 * H
            ).created

        async def drain() -> None:
            runner = DeliveryRunner(sessionmaker=db_sessions, settings=settings, worker_id="test")
            try:
                await runner.drain(timeout_s=10.0)
            finally:
                await runner.aclose(grace_s=1.0)

        asyncio.run(drain())
        (req,) = rx.requests
    payload = Webhook(secret).verify(req.body, req.headers)
    event = IncidentEvent.model_validate(payload)  # the documented schema
    assert event.type == "incident.created" and event.id == req.msg_id
    inc = event.data.incident
    assert (inc.id, inc.status, inc.state, inc.segment) == (iid, "open", "new", "eu-west")
    assert inc.headline == "Surge in eu-west: Pricing and 1 more topic"
    assert [m.reason_code for m in inc.members] == ["opened", "same_segment"]
