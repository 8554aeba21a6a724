"""End to end: two weeks of demo comments with a tax-on-full-price incident in one region on one day ->
exactly one pricing alert, explained (over-indexing region, NPS impact, representative comments), with its
lifecycle through the API and alert.created in the webhook outbox. SQLite and PostgreSQL (fixtures).

The fake engine tags topics by keywords (tests/conftest.py): the incident texts mention "tax", "price" and
"sale" (pricing_promotions) and mostly "charged" (billing_payments too), so billing may alert as well; the
assertions are about the pricing topic. No real sentiment/emotion heads ship under models/ (only the topic
taxonomy), so there is no real-engine variant.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker
from nlp_service.demo.generator import DemoConfig, Incident, generate
from nlp_service.webhooks.tables import WebhookEvent

START = date(2024, 3, 4)  # a Monday
INCIDENT_DAY = date(2024, 3, 14)  # day 10: a week of daily history before it
AT = datetime(2024, 3, 18, tzinfo=UTC)  # detection time: the two weeks are complete
TWO_WEEKS_S = 14 * 86400
TOPIC = "pricing_promotions"


@pytest.fixture
def alerts_client(app_settings: Settings, start_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(
        update={
            "run_worker_in_process": False,
            "webhook_allow_loopback": True,
            "detect_sync_max_lookback_s": TWO_WEEKS_S,  # answered at once, not as a background job
        }
    )
    with start_app(settings) as client:
        yield client


def ingest_demo(client: TestClient) -> int:
    incident = Incident(day=INCIDENT_DAY, region="eu-west", count=60)
    items = list(generate(DemoConfig(n=2500, seed=11, start=START, days=14, incident=incident)))
    for i in range(0, len(items), 256):
        r = client.post("/v1/comments", json={"comments": items[i : i + 256]})
        assert r.status_code in (200, 201), r.text
    return len(items)


def outbox(database_url: str) -> list[dict]:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as s:
            return [
                json.loads(b) for b in s.scalars(select(WebhookEvent.body).order_by(WebhookEvent.created_at))
            ]
    finally:
        engine.dispose()


def test_incident_raises_one_explained_alert(alerts_client: TestClient, database_url: str) -> None:
    client = alerts_client
    assert client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9999/hook"}).status_code == 201
    ingest_demo(client)

    r = client.post("/v1/detect", json={"at": AT.isoformat(), "lookback_s": TWO_WEEKS_S})
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["series_scanned"] > 100 and summary["alerts_created"] >= 1

    page = client.get("/v1/alerts", params={"topic": TOPIC}).json()
    assert page["total"] == 1, page  # one alert: the topic-level one, no separate eu-west alert
    (alert,) = page["alerts"]
    assert (alert["kind"], alert["segment"], alert["status"]) == ("spike", "all", "new")
    assert alert["window_start"].startswith("2024-03-14") and alert["observed"] > 2 * alert["baseline"]
    assert alert["severity"] in ("medium", "high", "critical") and alert["p_value"] < 1e-4
    ex = alert["explanation"]
    over = ex["over_indexing"]
    assert over[0]["field"] == "region" and over[0]["value"] == "eu-west", over
    assert over[0]["excess_share"] > 0.8
    assert "eu-west" in ex["summary"]
    phrases = [p["phrase"] for p in ex["key_phrases"]]  # the incident's words, over the topic's usual ones
    assert {"tax", "sale price"} <= set(phrases[:3]) and "key phrases: " in ex["summary"], ex["key_phrases"]
    assert ex["key_phrases"][0]["window_count"] >= 50 and ex["key_phrases"][0]["baseline_count"] <= 2
    assert ex["nps"]["delta"] is not None and ex["nps"]["delta"] < -20, ex["nps"]
    assert ex["negative_share"]["delta"] > 0
    assert ex["volume"]["share_of_all"]["window"] > ex["volume"]["share_of_all"]["baseline"]
    reps = alert["representative_comments"]
    assert 3 <= len(reps) <= 5
    assert all("tax" in c["text"].lower() for c in reps), [c["text"] for c in reps]
    assert ex["sample_comment_ids"] == [c["id"] for c in reps]

    # the outbox has alert.created for it, written with the alert
    created = [e for e in outbox(database_url) if e["type"] == "alert.created"]
    ours = [e for e in created if e["data"]["alert"]["id"] == alert["id"]]
    assert len(ours) == 1 and ours[0]["data"]["alert"]["segment"] == "eu-west"

    # a re-run over the same buckets changes nothing
    again = client.post("/v1/detect", json={"at": AT.isoformat(), "lookback_s": TWO_WEEKS_S}).json()
    assert (again["alerts_created"], again["alerts_updated"]) == (0, 0)

    # lifecycle through the API: new -> acknowledged -> resolved; anything else is a 409
    aid = alert["id"]
    r = client.post(f"/v1/alerts/{aid}/acknowledge", json={"note": "looking at the tax engine"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged" and r.json()["acknowledged_at"]
    assert client.post(f"/v1/alerts/{aid}/acknowledge").status_code == 409
    r = client.post(f"/v1/alerts/{aid}/resolve")
    assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["resolved_at"]
    r = client.post(f"/v1/alerts/{aid}/resolve")
    assert r.status_code == 409 and "resolved" in r.json()["error"]
    assert client.post("/v1/alerts/alr_nope/acknowledge").status_code == 404
    assert client.get("/v1/alerts/alr_nope").status_code == 404
    assert client.get(f"/v1/alerts/{aid}").json()["note"] == "looking at the tax engine"
    assert client.get("/v1/alerts", params={"status": "resolved", "topic": TOPIC}).json()["total"] == 1
    assert client.get("/v1/alerts", params={"status": "open", "topic": TOPIC}).json()["total"] == 0
    types = [e["type"] for e in outbox(database_url) if e["data"].get("alert", {}).get("id") == aid]
    assert types == ["alert.created", "alert.updated", "alert.resolved"]

    # the chart series: counts, shares, baseline, the spike and the alert
    r = client.get(
        f"/v1/topics/{TOPIC}/series",
        params={"bucket": "day", "since": "2024-03-04T00:00:00Z", "until": AT.isoformat()},
    )
    assert r.status_code == 200, r.text
    chart = r.json()
    assert len(chart["points"]) == 14 and aid in chart["alerts"]
    assert [s["timestamp"][:10] for s in chart["spikes"] if s["kind"] == "spike"] == ["2024-03-14"]
    peak = chart["points"][10]
    assert peak["count"] >= 60 and peak["share"] > 0.2 and peak["expected"] < peak["count"] / 2
    r = client.get(
        f"/v1/topics/{TOPIC}/series",
        params={"bucket": "day", "segment": "region", "value": "eu-west", "since": "2024-03-04T00:00:00Z",
                "until": AT.isoformat()},
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["points"][10]["count"] >= 60
    assert client.get("/v1/topics/no_such_topic/series").status_code == 404
    r = client.get(f"/v1/topics/{TOPIC}/series", params={"bucket": "week"})
    assert r.status_code == 422 and "bucket" in r.json()["error"]
    r = client.get(f"/v1/topics/{TOPIC}/series", params={"segment": "region"})
    assert r.status_code == 422 and "segment and value" in r.text
