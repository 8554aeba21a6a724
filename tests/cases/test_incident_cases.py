"""An incident's case through the API, the same as an alert's: owner, lifecycle to closed (cascading to the
member alerts), SLA per step, notes, history (who, when, what, note) and one ``incident.updated`` /
``incident.resolved`` event per change carrying the entry. A search-only key is refused. SQLite and
PostgreSQL (fixtures)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from nlp_service.auth import service as keys
from nlp_service.db import make_engine, make_sessionmaker, session_scope
from nlp_service.incidents.tables import Incident, IncidentMember
from tests.cases.conftest import add_alert, outbox

INCIDENT_TYPES = ["incident.created", "incident.updated", "incident.resolved"]


def add_incident(
    database_url: str, *, status: str = "new", age: timedelta = timedelta(hours=1), members: int = 2
) -> tuple[str, list[str]]:
    """Store an incident created ``age`` ago with ``members`` new member alerts; returns their ids."""
    alert_ids = [add_alert(database_url, age=age) for _ in range(members)]
    created = datetime.now(UTC) - age
    incident_id = f"inc_{uuid.uuid4().hex}"
    engine = make_engine(database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            s.add(
                Incident(
                    id=incident_id,
                    status=status,
                    severity="high",
                    headline="Surge in eu-west: Pricing",
                    segment="region",
                    segment_value="eu-west",
                    topics=["pricing_promotions"],
                    window_start=created - timedelta(days=1),
                    window_end=created,
                    summary={"text": "pricing complaints x5 in eu-west"},
                    revision=1,
                    created_at=created,
                    updated_at=created,
                )
            )
            s.flush()
            for rank, aid in enumerate(alert_ids, start=1):
                s.add(
                    IncidentMember(
                        alert_id=aid,
                        incident_id=incident_id,
                        reason_code="opened" if rank == 1 else "same_segment",
                        reason="test member",
                        related_alert_id=None,
                        rank=rank,
                        joined_at=created,
                    )
                )
    finally:
        engine.dispose()
    return incident_id, alert_ids


def test_incident_case_from_new_to_closed(case_client: TestClient, database_url: str) -> None:
    client = case_client
    r = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9999/hook", "event_types": INCIDENT_TYPES})
    assert r.status_code == 201, r.text
    iid, (a1, a2) = add_incident(database_url, age=timedelta(hours=5))  # past the 4 h acknowledge SLA
    inc = client.get(f"/v1/incidents/{iid}").json()
    assert (inc["status"], inc["overdue"], inc["owner"], inc["closed_at"]) == ("new", True, None, None)
    assert inc["due_at"]

    r = client.post(f"/v1/incidents/{iid}/assign", json={"owner": " ana@example.com ", "note": "yours"})
    assert r.status_code == 200, r.text
    assert (r.json()["owner"], r.json()["status"], r.json()["note"]) == ("ana@example.com", "new", "yours")
    assert {m["status"] for m in r.json()["members"]} == {"new"}  # assigning does not touch the members
    assert client.get(f"/v1/alerts/{a1}").json()["owner"] is None
    r = client.post(f"/v1/incidents/{iid}/notes", json={"note": "called the tax team"})
    assert r.status_code == 200 and r.json()["note"] == "called the tax team"
    r = client.post(f"/v1/incidents/{iid}/acknowledge", json={"note": "on it"})
    body = r.json()
    assert r.status_code == 200 and (body["status"], body["overdue"]) == ("acknowledged", False)
    assert {m["status"] for m in body["members"]} == {"acknowledged"}
    assert client.post(f"/v1/incidents/{iid}/close").status_code == 409  # allowed from resolved only
    r = client.post(f"/v1/incidents/{iid}/resolve", json={"note": "tax engine fixed"})
    assert r.status_code == 200 and (r.json()["resolved_reason"], r.json()["note"]) == (
        "manual",
        "tax engine fixed",
    )
    assert {m["status"] for m in r.json()["members"]} == {"resolved"}
    r = client.post(f"/v1/incidents/{iid}/close")
    closed = r.json()
    assert r.status_code == 200 and (closed["status"], closed["overdue"], closed["due_at"]) == (
        "closed",
        False,
        None,
    )
    assert closed["closed_at"] and closed["revision"] == 6
    assert {m["status"] for m in closed["members"]} == {"closed"}
    for path, body in (
        ("assign", {"owner": "bo"}),
        ("acknowledge", None),
        ("resolve", None),
        ("close", None),
    ):
        r = client.post(f"/v1/incidents/{iid}/{path}", json=body)
        assert r.status_code == 409, (path, r.text)
    assert client.post(f"/v1/incidents/{iid}/notes", json={"note": "post-mortem filed"}).status_code == 200

    history = client.get(f"/v1/incidents/{iid}/history").json()
    entries = history["entries"]
    assert (history["target_type"], history["target_id"]) == ("incident", iid)
    assert [e["action"] for e in entries] == [
        "assigned",
        "note",
        "acknowledged",
        "resolved",
        "closed",
        "note",
    ]
    assert {e["actor"] for e in entries} == {"open"}  # keys off
    assert [(e["from_status"], e["to_status"]) for e in entries[2:5]] == [
        ("new", "acknowledged"),
        ("acknowledged", "resolved"),
        ("resolved", "closed"),
    ]
    assert entries[0]["owner"] == "ana@example.com" and entries[0]["details"] == {"previous_owner": None}
    assert entries[3]["note"] == "tax engine fixed" and entries[5]["note"] == "post-mortem filed"
    # each member alert's case kept the cascaded changes, by the same actor, with the note
    member = client.get(f"/v1/alerts/{a2}/history").json()["entries"]
    assert [(e["action"], e["actor"], e["note"]) for e in member] == [
        ("acknowledged", "open", "on it"),
        ("resolved", "open", "tax engine fixed"),
        ("closed", "open", None),
    ]

    events = [e for e in outbox(database_url) if e["type"].startswith("incident.")]
    assert [e["type"] for e in events] == ["incident.updated"] * 3 + ["incident.resolved"] + [
        "incident.updated"
    ] * 2
    changes = [e["data"]["incident"]["change"] for e in events]
    assert [c["action"] for c in changes] == [e["action"] for e in entries]
    assert [c["id"] for c in changes] == [e["id"] for e in entries]
    last = events[-2]["data"]["incident"]
    assert (last["state"], last["status"], last["owner"]) == ("closed", "resolved", "ana@example.com")
    assert {m["status"] for m in last["members"]} == {"closed"}  # the event is written after the cascade
    assert [e["data"]["incident"]["revision"] for e in events] == [2, 3, 4, 5, 6, 7]
    alert_events = [e for e in outbox(database_url) if e["type"].startswith("alert.")]
    assert len(alert_events) == 6  # acknowledged, resolved, closed for each of the two members

    assert client.get("/v1/incidents", params={"status": "closed"}).json()["total"] == 1
    assert client.get("/v1/incidents", params={"owner": "ana@example.com"}).json()["total"] == 1
    assert client.get("/v1/incidents", params={"owner": "bo"}).json()["total"] == 0


def test_incident_overdue_at_each_step(case_client: TestClient, database_url: str) -> None:
    fresh, _ = add_incident(database_url, age=timedelta(hours=1), members=1)
    late_new, _ = add_incident(database_url, age=timedelta(hours=5), members=1)
    late_progress, _ = add_incident(database_url, status="acknowledged", age=timedelta(days=4), members=1)
    late_resolved, _ = add_incident(database_url, status="resolved", age=timedelta(days=8), members=1)
    ok_resolved, _ = add_incident(database_url, status="resolved", age=timedelta(days=2), members=1)
    closed, _ = add_incident(database_url, status="closed", age=timedelta(days=30), members=1)
    page = case_client.get("/v1/incidents", params={"status": "overdue"}).json()
    assert {i["id"] for i in page["incidents"]} == {late_new, late_progress, late_resolved}
    for iid, overdue in ((fresh, False), (ok_resolved, False), (closed, False), (late_resolved, True)):
        assert case_client.get(f"/v1/incidents/{iid}").json()["overdue"] is overdue
    opened = case_client.get("/v1/incidents", params={"status": "open"}).json()["incidents"]
    assert {i["id"] for i in opened} == {fresh, late_new, late_progress}


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("assign", {}, "owner"),
        ("assign", {"owner": "   "}, "owner"),
        ("assign", {"owner": "ana", "extra": 1}, "extra"),
        ("notes", {"note": ""}, "note"),
        ("acknowledge", {"feedback": "useful"}, "feedback"),
        ("close", {"note": "x" * 1001}, "note"),
    ],
)
def test_bad_incident_case_input_is_a_422_and_changes_nothing(
    case_client: TestClient, database_url: str, path: str, body: dict, needle: str
) -> None:
    iid, _ = add_incident(database_url, members=1)
    r = case_client.post(f"/v1/incidents/{iid}/{path}", json=body)
    assert r.status_code == 422 and needle in r.text, r.text
    assert case_client.get(f"/v1/incidents/{iid}/history").json()["entries"] == []
    assert case_client.get(f"/v1/incidents/{iid}").json()["revision"] == 1


def test_unknown_incident_is_a_404_everywhere(case_client: TestClient) -> None:
    for path, body in (("assign", {"owner": "ana"}), ("notes", {"note": "n"}), ("close", None)):
        r = case_client.post(f"/v1/incidents/inc_nope/{path}", json=body)
        assert r.status_code == 404 and r.json()["type"] == "not_found", path
    assert case_client.get("/v1/incidents/inc_nope/history").status_code == 404


def test_the_key_is_the_actor_and_search_only_is_refused(case_client: TestClient, database_url: str) -> None:
    iid, _ = add_incident(database_url, members=1)
    engine = make_engine(database_url)
    with session_scope(make_sessionmaker(engine)) as s:
        row, token = keys.create(db_session=s, name="support-lead", scopes=["alerts"])
        key_id = row.id
        _, search_token = keys.create(db_session=s, name="reader", scopes=["search"])
    engine.dispose()
    lead, reader = {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {search_token}"}
    for path, body in (
        ("assign", {"owner": "ana"}),
        ("notes", {"note": "n"}),
        ("acknowledge", None),
        ("resolve", None),
        ("close", None),
    ):
        r = case_client.post(f"/v1/incidents/{iid}/{path}", json=body, headers=reader)
        assert r.status_code == 403, (path, r.text)
    assert case_client.get(f"/v1/incidents/{iid}/history", headers=reader).status_code == 403
    assert case_client.post(f"/v1/incidents/{iid}/assign", json={"owner": "ana"}).status_code == 401
    r = case_client.post(f"/v1/incidents/{iid}/assign", json={"owner": "ana"}, headers=lead)
    assert r.status_code == 200
    r = case_client.post(f"/v1/incidents/{iid}/assign", json={"owner": None}, headers=lead)
    assert r.status_code == 200 and r.json()["owner"] is None
    entries = case_client.get(f"/v1/incidents/{iid}/history", headers=lead).json()["entries"]
    assert [(e["actor"], e["owner"]) for e in entries] == [(key_id, "ana"), (key_id, None)]
    assert entries[1]["details"] == {"previous_owner": "ana"}
