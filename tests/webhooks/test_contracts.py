"""The published webhook contract holds: every event the service sends validates against the body schema
that ``/openapi.json`` documents for it under ``webhooks``.

Each event type is produced through the real code paths of a running app (real DB): volume alerts by
detection over ingested demo comments with an incident, an emerging-topic alert by topic discovery over a
burst of a new complaint, ``alert.updated``/``alert.resolved`` by the lifecycle endpoints, ``webhook.ping``
by its endpoint, ``webhook.disabled`` by the service function the delivery runner calls. The bodies are read
from the outbox (``webhook_events.body``: the exact bytes the sender posts) and validated with
``jsonschema`` (``$ref``s resolved against the document's ``components``, ``date-time`` checked).

A new event type must be documented (``document_webhooks``) and get a producer in ``PRODUCERS`` below: the
coverage assertions name what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import product
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker, session_scope
from nlp_service.demo.generator import DemoConfig, Incident, generate
from nlp_service.webhooks import service
from nlp_service.webhooks.payloads import EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES
from nlp_service.webhooks.tables import WebhookEvent

DEMO_START = date(2024, 3, 4)  # a Monday: two weeks of demo comments, an incident on day 10
DETECT_AT = datetime(2024, 3, 18, tzinfo=UTC)
TWO_WEEKS_S = 14 * 86400
DISCOVERY_AT = datetime(2024, 6, 10, tzinfo=UTC)  # far from the demo weeks: its own windows
BURST = [
    f"{o}my loyalty points expired {e}{a}"
    for o, e, a in product(
        ["", "all "],
        ["before I could use them", "before I could spend them", "before I could redeem them"],
        ["", " today", " again", " sadly", " last night"],
    )
]  # 30 texts no topic keyword claims


@pytest.fixture
def client(app_settings: Settings, start_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(
        update={
            "run_worker_in_process": False,  # deliveries stay in the outbox, where the test reads them
            "webhook_allow_loopback": True,
            "detect_sync_max_lookback_s": TWO_WEEKS_S,
        }
    )
    with start_app(settings) as c:
        yield c


def ingest(client: TestClient, items: list[dict]) -> None:
    for i in range(0, len(items), 256):
        r = client.post("/v1/comments", json={"comments": items[i : i + 256]})
        assert r.status_code in (200, 201), r.text


def alerts_by_detection(client: TestClient, ctx: dict[str, Any]) -> None:
    """alert.created (spike), alert.updated (acknowledge), alert.resolved (resolve)."""
    incident = Incident(day=DEMO_START + timedelta(days=10), region="eu-west", count=60)
    ingest(client, list(generate(DemoConfig(n=2000, seed=11, start=DEMO_START, days=14, incident=incident))))
    r = client.post("/v1/detect", json={"at": DETECT_AT.isoformat(), "lookback_s": TWO_WEEKS_S})
    assert r.status_code == 200 and r.json()["alerts_created"] >= 1, r.text
    alert_id = r.json()["alert_ids"][0]
    assert client.post(f"/v1/alerts/{alert_id}/acknowledge", json={"note": "on it"}).status_code == 200
    assert client.post(f"/v1/alerts/{alert_id}/assign", json={"owner": "ana@example.com"}).status_code == 200
    assert client.post(f"/v1/alerts/{alert_id}/resolve").status_code == 200
    assert client.post(f"/v1/alerts/{alert_id}/close", json={"note": "done"}).status_code == 200


def incidents_by_detection(client: TestClient, ctx: dict[str, Any]) -> None:
    """incident.created (by the detection above), incident.updated (acknowledge, assign, note, close: each
    with its case change), incident.resolved."""
    r = client.get("/v1/incidents")
    assert r.status_code == 200 and r.json()["incidents"], r.text
    incident_id = r.json()["incidents"][0]["id"]
    assert client.post(f"/v1/incidents/{incident_id}/acknowledge").status_code == 200
    r = client.post(f"/v1/incidents/{incident_id}/assign", json={"owner": "ana@example.com"})
    assert r.status_code == 200
    assert client.post(f"/v1/incidents/{incident_id}/notes", json={"note": "tax rule"}).status_code == 200
    assert client.post(f"/v1/incidents/{incident_id}/resolve", json={"note": "fixed"}).status_code == 200
    assert client.post(f"/v1/incidents/{incident_id}/close").status_code == 200


def emerging_alert(client: TestClient, ctx: dict[str, Any]) -> None:
    """alert.created of kind emerging_topic (topic discovery over a burst of a new complaint)."""
    day = DISCOVERY_AT - timedelta(days=1)
    items = [
        {"id": f"burst-{i}", "text": text, "created_at": (day + timedelta(minutes=20 * i)).isoformat()}
        for i, text in enumerate(BURST)
    ]
    ingest(client, [{**c, "source": "survey", "region": "eu-west"} for c in items])
    r = client.post("/v1/topics/suggestions/refresh", json={"at": DISCOVERY_AT.isoformat()})
    assert r.status_code == 200 and len(r.json()["alerts_created"]) == 1, r.text


def ping(client: TestClient, ctx: dict[str, Any]) -> None:
    assert client.post(f"/v1/webhooks/{ctx['webhook_id']}/ping").status_code in (200, 202)


def disabled(client: TestClient, ctx: dict[str, Any]) -> None:
    """What the delivery runner does on a 410 Gone or a subscription failing too long."""
    sessions = client.app.state.nlp.require_db()  # type: ignore[attr-defined]
    with session_scope(sessions) as db_session:
        sub = service.get(db_session=db_session, webhook_id=ctx["gone_webhook_id"])
        service.disable(db_session=db_session, subscription=sub, reason="410 Gone")


# event type -> the producers that make the service send it (run in this order, on one app)
PRODUCERS: dict[str, Callable[[TestClient, dict[str, Any]], None]] = {
    "alert.created": alerts_by_detection,  # also alert.updated and alert.resolved
    "alert.updated": alerts_by_detection,
    "alert.resolved": alerts_by_detection,
    "incident.created": incidents_by_detection,
    "incident.updated": incidents_by_detection,
    "incident.resolved": incidents_by_detection,
    "webhook.ping": ping,
    "webhook.disabled": disabled,
}
EXTRA_PRODUCERS = [emerging_alert]  # further variants of event types above


def outbox(database_url: str) -> list[dict[str, Any]]:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as s:
            return [json.loads(b) for b in s.scalars(select(WebhookEvent.body))]
    finally:
        engine.dispose()


def aware_datetime(value: object) -> bool:
    """``date-time``: ISO 8601 with a time zone (RFC 3339)."""
    if not isinstance(value, str):
        return True
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None


OPEN_OBJECTS = {"AlertExplanation"}  # documented as open: kind-specific fields beyond the ones listed


def closed(schema: Any, name: str | None = None) -> Any:
    """``schema`` with every object that lists its properties closed (``additionalProperties: false``),
    the components named in ``OPEN_OBJECTS`` excepted: a field sent but not documented is a mismatch."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if "properties" in out and name not in OPEN_OBJECTS:
        out["additionalProperties"] = False
    return out


def validator_for(openapi: dict[str, Any], event_type: str) -> jsonschema.protocols.Validator:
    schema = openapi["webhooks"][event_type]["post"]["requestBody"]["content"]["application/json"]["schema"]
    components = {n: closed(s, n) for n, s in openapi["components"]["schemas"].items()}
    root = {**closed(schema), "components": {"schemas": components}}  # "#/components/..." resolves here
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(aware_datetime)
    cls = jsonschema.validators.validator_for(root, default=jsonschema.Draft202012Validator)
    cls.check_schema(root)
    return cls(root, format_checker=checker)


def test_every_event_type_is_documented(client: TestClient) -> None:
    documented = set(client.get("/openapi.json").json()["webhooks"])
    assert documented == set(EVENT_TYPES), "OpenAPI webhooks and the event types the service sends differ"
    assert set(PRODUCERS) == set(EVENT_TYPES), (
        f"no producer in this test for {set(EVENT_TYPES) - set(PRODUCERS)}"
    )


def test_every_sent_payload_matches_its_published_schema(client: TestClient, database_url: str) -> None:
    openapi = client.get("/openapi.json").json()
    ctx: dict[str, Any] = {}
    for key, url in (
        ("webhook_id", "http://127.0.0.1:9999/hook"),
        ("gone_webhook_id", "http://127.0.0.1:9998/"),
    ):
        r = client.post("/v1/webhooks", json={"url": url, "event_types": list(SUBSCRIBABLE_EVENT_TYPES)})
        assert r.status_code == 201, r.text
        ctx[key] = r.json()["id"]
    for produce in [*dict.fromkeys(PRODUCERS.values()), *EXTRA_PRODUCERS]:
        produce(client, ctx)

    events = outbox(database_url)
    sent = {e["type"] for e in events}
    assert sent >= set(openapi["webhooks"]), f"not produced: {set(openapi['webhooks']) - sent}"
    kinds = {e["data"]["alert"]["kind"] for e in events if e["type"].startswith("alert.")}
    assert {"spike", "emerging_topic"} <= kinds, kinds
    changes = {
        e["data"]["incident"]["change"]["action"]
        for e in events
        if e["type"].startswith("incident.") and e["data"]["incident"].get("change")
    }
    assert changes == {"acknowledged", "assigned", "note", "resolved", "closed"}, changes  # the case changes
    validators = {t: validator_for(openapi, t) for t in openapi["webhooks"]}
    failures = [
        f"{event['type']} {'/'.join(map(str, error.absolute_path))}: {error.message}"
        for event in events
        for error in validators[event["type"]].iter_errors(event)
    ]
    assert not failures, "\n".join(failures[:20])


def test_schema_mismatch_is_caught(client: TestClient) -> None:
    """The validator is not vacuous: a payload missing a required field or with a wrong type fails."""
    openapi = client.get("/openapi.json").json()
    validator = validator_for(openapi, "webhook.ping")
    good = {
        "id": "evt_1",
        "type": "webhook.ping",
        "timestamp": "2026-01-01T00:00:00Z",
        "version": "2026-11-01",
        "data": {"webhook_id": "wh_1", "message": "ping"},
    }
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "data": {}})
    assert not validator.is_valid({**good, "timestamp": "2026-01-01T00:00:00"})  # no time zone
    assert not validator.is_valid({**good, "type": "alert.created"})
    assert not validator.is_valid({**good, "data": {**good["data"], "undocumented": 1}})
