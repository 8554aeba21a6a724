"""Acceptance: two weeks of demo comments with the generator's incident (tax on the full price, eu-west, one
day) -> exactly one incident naming the region and the topic, with its NPS impact (and the lead alert's key
phrases when its explanation has them), its members and reasons, its lifecycle through the API and its
``incident.*`` events in the outbox. SQLite and PostgreSQL; the fake engine (see tests/anomaly/
test_alerts_e2e.py for why the pricing and billing topics both see the incident)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from nlp_service.config import Settings
from nlp_service.inference.engine import Engine
from nlp_service.main import create_app
from tests.anomaly.test_alerts_e2e import AT, TOPIC, TWO_WEEKS_S, ingest_demo, outbox
from tests.conftest import local_client, wait_ready

INCIDENT_TYPES = ["incident.created", "incident.updated", "incident.resolved"]
SEEN_BY = {TOPIC, "billing_payments"}  # the topics the fake engine sees the incident's comments in


@pytest.fixture
def incidents_client(app_settings: Settings, start_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(
        update={
            "run_worker_in_process": False,
            "webhook_allow_loopback": True,
            "detect_sync_max_lookback_s": TWO_WEEKS_S,
        }
    )
    with start_app(settings) as client:
        yield client


def test_demo_incident_is_one_incident(incidents_client: TestClient, database_url: str) -> None:
    client = incidents_client
    r = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9999/hook", "event_types": INCIDENT_TYPES})
    assert r.status_code == 201, r.text
    ingest_demo(client)
    r = client.post("/v1/detect", json={"at": AT.isoformat(), "lookback_s": TWO_WEEKS_S})
    assert r.status_code == 200, r.text
    assert r.json()["incidents_created"] == 1, r.json()

    page = client.get("/v1/incidents").json()
    assert page["total"] == 1, page
    (inc,) = page["incidents"]
    assert (inc["status"], inc["segment"], inc["segment_value"]) == ("new", "region", "eu-west")
    assert TOPIC in inc["topics"] and set(inc["topics"]) <= SEEN_BY, inc["topics"]
    assert inc["headline"].startswith("Surge in eu-west: ")
    lead = inc["members"][0]
    assert lead["topic_id"] == inc["topics"][0] and lead["rank"] == 1
    codes = sorted(m["reason_code"] for m in inc["members"])
    assert codes == ["opened"] + ["same_segment"] * (len(codes) - 1), inc["members"]
    assert all("region=eu-west" in m["reason"] for m in inc["members"] if m["reason_code"] == "same_segment")
    assert inc["summary"]["nps"]["delta"] < -20 and "NPS" in inc["summary"]["text"]
    assert inc["window_start"].startswith("2024-03-14")
    alert = client.get(f"/v1/alerts/{lead['alert_id']}").json()
    assert inc["summary"]["lead_summary"] == alert["explanation"]["summary"]
    phrases = alert["explanation"].get("key_phrases", [])  # present once key phrases are explained
    assert inc["summary"]["key_phrases"] == phrases
    if phrases:
        top = phrases[0]["phrase"] if isinstance(phrases[0], dict) else phrases[0]
        assert f"({top}" in inc["summary"]["text"], inc["summary"]["text"]
    assert client.get(f"/v1/incidents/{inc['id']}").json() == inc
    # every alert of the run of medium severity or more belongs to it (a lone low alert opens none)
    open_alerts = client.get("/v1/alerts", params={"status": "open"}).json()["alerts"]
    serious = {a["id"] for a in open_alerts if a["severity"] != "low"}
    assert serious == {m["alert_id"] for m in inc["members"]} and len(serious) >= 2
    # each alert names its incident (the list and the alert alike); the others none
    assert {a["id"] for a in open_alerts if a["incident_id"] == inc["id"]} == serious
    assert all(a["incident_id"] is None for a in open_alerts if a["id"] not in serious)
    assert alert["incident_id"] == inc["id"]

    # a re-run over the same buckets: nothing new; the incident has been quiet for 3 days since: auto-resolved
    again = client.post("/v1/detect", json={"at": AT.isoformat(), "lookback_s": TWO_WEEKS_S}).json()
    assert (again["incidents_created"], again["incidents_updated"], again["incidents_resolved"]) == (0, 0, 1)
    resolved = client.get(f"/v1/incidents/{inc['id']}").json()
    assert (resolved["status"], resolved["resolved_reason"]) == ("resolved", "auto")
    assert client.get("/v1/incidents", params={"status": "open"}).json()["total"] == 0
    r = client.post(f"/v1/incidents/{inc['id']}/resolve")
    assert r.status_code == 409 and "resolved" in r.json()["error"]
    events = [e for e in outbox(database_url) if e["type"].startswith("incident.")]
    assert [e["type"] for e in events] == ["incident.created", "incident.resolved"]
    assert events[0]["data"]["incident"]["headline"] == inc["headline"]


def test_incident_lifecycle_through_the_api(incidents_client: TestClient) -> None:
    client = incidents_client
    ingest_demo(client)
    client.post("/v1/detect", json={"at": AT.isoformat(), "lookback_s": TWO_WEEKS_S})
    (inc,) = client.get(
        "/v1/incidents", params={"status": "new", "severity": ["medium", "high", "critical"]}
    ).json()["incidents"]
    iid = inc["id"]
    r = client.post(f"/v1/incidents/{iid}/acknowledge", json={"note": "tax engine"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["note"], body["revision"]) == ("acknowledged", "tax engine", 2)
    assert {m["status"] for m in body["members"]} == {"acknowledged"}
    assert client.post(f"/v1/incidents/{iid}/acknowledge").status_code == 409
    r = client.post(f"/v1/incidents/{iid}/resolve")
    assert r.status_code == 200 and r.json()["resolved_reason"] == "manual"
    assert {m["status"] for m in r.json()["members"]} == {"resolved"}
    still_open = client.get("/v1/alerts", params={"status": "open"}).json()["alerts"]
    assert not {a["id"] for a in still_open} & {m["alert_id"] for m in inc["members"]}
    assert client.post("/v1/incidents/inc_nope/resolve").status_code == 404
    assert client.get("/v1/incidents/inc_nope").status_code == 404
    r = client.get("/v1/incidents", params={"status": "reopened"})
    assert r.status_code == 422
    r = client.post(f"/v1/incidents/{iid}/resolve", json={"note": "x" * 1001})
    assert r.status_code == 422


@pytest.mark.slow
def test_demo_incident_on_the_real_engine(app_settings: Settings, real_engine: Engine) -> None:
    """The same acceptance on the real encoder, topic model and heads as shipped (SQLite; minutes on CPU)."""
    if "postgresql" in app_settings.database_url:
        pytest.skip("the SQLite run covers it")
    settings = app_settings.model_copy(
        update={"run_worker_in_process": False, "detect_sync_max_lookback_s": TWO_WEEKS_S}
    )
    with local_client(create_app(settings, engine=real_engine)) as client:
        wait_ready(client)
        ingest_demo(client)
        r = client.post("/v1/detect", json={"at": AT.isoformat(), "lookback_s": TWO_WEEKS_S})
        assert r.status_code == 200, r.text
        page = client.get("/v1/incidents").json()
        alerts = client.get("/v1/alerts").json()["alerts"]
    summary = [(a["topic_id"], a["segment_value"], a["severity"], a["window_start"]) for a in alerts]
    assert page["total"] == 1, (page, summary)
    (inc,) = page["incidents"]
    assert inc["segment_value"] == "eu-west" and "eu-west" in inc["headline"], inc
    assert TOPIC in inc["topics"] and inc["summary"]["nps"]["delta"] < 0
    print(inc["headline"], "|", inc["summary"]["text"])
