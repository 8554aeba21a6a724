"""An alert's case through the API: owner, lifecycle to closed, SLA per step, notes, history (who, when, what)
and one ``alert.updated`` / ``alert.resolved`` event per change. SQLite and PostgreSQL (fixtures)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from nlp_service.auth import service as keys
from nlp_service.db import make_engine, make_sessionmaker, session_scope
from tests.cases.conftest import add_alert, outbox


def test_case_from_new_to_closed_with_history_and_events(case_client: TestClient, database_url: str) -> None:
    client = case_client
    aid = add_alert(database_url, age=timedelta(hours=5))  # past the 4 h acknowledge SLA
    alert = client.get(f"/v1/alerts/{aid}").json()
    assert alert["status"] == "new" and alert["overdue"] is True and alert["owner"] is None
    assert alert["due_at"] and alert["closed_at"] is None and alert["feedback"] is None

    r = client.post(f"/v1/alerts/{aid}/assign", json={"owner": " ana@example.com ", "note": "yours"})
    assert r.status_code == 200, r.text
    assert r.json()["owner"] == "ana@example.com" and r.json()["status"] == "new"
    r = client.post(f"/v1/alerts/{aid}/notes", json={"note": "called the tax team"})
    assert r.status_code == 200 and r.json()["note"] == "called the tax team"
    r = client.post(f"/v1/alerts/{aid}/acknowledge", json={"feedback": "useful"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged" and r.json()["feedback"] == "useful"
    assert r.json()["overdue"] is False  # the in-progress step has 72 h
    r = client.post(f"/v1/alerts/{aid}/close")
    assert r.status_code == 409 and "allowed from: resolved" in r.text
    assert client.post(f"/v1/alerts/{aid}/resolve", json={"note": "tax engine fixed"}).json()["resolved_at"]
    r = client.post(f"/v1/alerts/{aid}/close")
    closed = r.json()
    assert r.status_code == 200 and closed["status"] == "closed" and closed["closed_at"]
    assert closed["overdue"] is False and closed["due_at"] is None and closed["revision"] == 6
    refused = (("assign", {"owner": "bo"}), ("acknowledge", None), ("resolve", None), ("close", None))
    for path, body in refused:
        r = client.post(f"/v1/alerts/{aid}/{path}", json=body)
        assert r.status_code == 409, (path, r.text)
    assert client.post(f"/v1/alerts/{aid}/notes", json={"note": "post-mortem filed"}).status_code == 200

    history = client.get(f"/v1/alerts/{aid}/history").json()
    entries = history["entries"]
    assert history["target_type"] == "alert" and history["target_id"] == aid
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
    assert entries[2]["feedback"] == "useful" and entries[3]["note"] == "tax engine fixed"
    assert all(a["at"] <= b["at"] for a, b in zip(entries, entries[1:], strict=False))

    events = [e for e in outbox(database_url) if e["data"]["alert"]["id"] == aid]
    assert [e["type"] for e in events] == ["alert.updated"] * 3 + ["alert.resolved"] + ["alert.updated"] * 2
    changes = [e["data"]["alert"]["change"] for e in events]
    assert [c["action"] for c in changes] == [e["action"] for e in entries]
    last = events[-2]["data"]["alert"]
    assert last["state"] == "closed" and last["status"] == "resolved" and last["owner"] == "ana@example.com"
    assert [e["data"]["alert"]["revision"] for e in events] == [2, 3, 4, 5, 6, 7]

    assert client.get("/v1/alerts", params={"status": "closed"}).json()["total"] == 1
    assert client.get("/v1/alerts", params={"owner": "ana@example.com"}).json()["total"] == 1
    assert client.get("/v1/alerts", params={"owner": "bo"}).json()["total"] == 0


def test_overdue_at_each_step(case_client: TestClient, database_url: str) -> None:
    fresh = add_alert(database_url, age=timedelta(hours=1))
    late_new = add_alert(database_url, age=timedelta(hours=5))
    late_progress = add_alert(database_url, status="acknowledged", age=timedelta(days=4))
    late_resolved = add_alert(database_url, status="resolved", age=timedelta(days=8))
    ok_resolved = add_alert(database_url, status="resolved", age=timedelta(days=2))
    closed = add_alert(database_url, status="closed", age=timedelta(days=30))
    page = case_client.get("/v1/alerts", params={"status": "overdue"}).json()
    assert {a["id"] for a in page["alerts"]} == {late_new, late_progress, late_resolved}
    for aid, overdue in ((fresh, False), (ok_resolved, False), (closed, False), (late_resolved, True)):
        assert case_client.get(f"/v1/alerts/{aid}").json()["overdue"] is overdue
    assert {a["id"] for a in case_client.get("/v1/alerts", params={"status": "open"}).json()["alerts"]} == {
        fresh,
        late_new,
        late_progress,
    }


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("assign", {}, 422, "owner"),
        ("assign", {"owner": "   "}, 422, "owner"),
        ("assign", {"owner": "x" * 321}, 422, "owner"),
        ("assign", {"owner": "ana", "extra": 1}, 422, "extra"),
        ("notes", {"note": ""}, 422, "note"),
        ("notes", {"note": "x" * 1001}, 422, "note"),
        ("acknowledge", {"feedback": "meh"}, 422, "feedback"),
        ("resolve", {"note": "x" * 1001}, 422, "note"),
    ],
)
def test_bad_case_input_is_a_422_and_changes_nothing(
    case_client: TestClient, database_url: str, path: str, body: dict, status: int, needle: str
) -> None:
    aid = add_alert(database_url)
    r = case_client.post(f"/v1/alerts/{aid}/{path}", json=body)
    assert r.status_code == status and needle in r.text, r.text
    assert case_client.get(f"/v1/alerts/{aid}/history").json()["entries"] == []
    assert case_client.get(f"/v1/alerts/{aid}").json()["revision"] == 1


def test_unknown_alert_is_a_404_everywhere(case_client: TestClient) -> None:
    for path, body in (("assign", {"owner": "ana"}), ("notes", {"note": "n"}), ("close", None)):
        r = case_client.post(f"/v1/alerts/alr_nope/{path}", json=body)
        assert r.status_code == 404 and r.json()["type"] == "not_found", path
    assert case_client.get("/v1/alerts/alr_nope/history").status_code == 404


def test_unassign_and_the_key_is_the_actor(case_client: TestClient, database_url: str) -> None:
    aid = add_alert(database_url)
    engine = make_engine(database_url)
    with session_scope(make_sessionmaker(engine)) as s:
        row, token = keys.create(db_session=s, name="support-lead", scopes=["alerts"])
        key_id = row.id
    engine.dispose()
    auth = {"Authorization": f"Bearer {token}"}
    assert case_client.post(f"/v1/alerts/{aid}/assign", json={"owner": "ana"}).status_code == 401  # keys on
    r = case_client.post(f"/v1/alerts/{aid}/assign", json={"owner": "ana"}, headers=auth)
    assert r.status_code == 200
    r = case_client.post(f"/v1/alerts/{aid}/assign", json={"owner": None}, headers=auth)
    assert r.status_code == 200 and r.json()["owner"] is None
    entries = case_client.get(f"/v1/alerts/{aid}/history", headers=auth).json()["entries"]
    assert [(e["actor"], e["owner"]) for e in entries] == [(key_id, "ana"), (key_id, None)]
    assert entries[1]["details"] == {"previous_owner": "ana"}
