"""Discovery end to end on the real app (real DB, spaCy; the fake engine's hashed embeddings and keyword
topics, tests/conftest.py): a background of comments the topics claim, in two days, plus a burst of a new kind
of complaint (loyalty points vanishing: no topic keyword) on the second day -> one suggestion with its
keywords and representatives, and one ``emerging_topic`` alert through the alert lifecycle and the webhook
outbox; a second run raises no second alert. SQLite and PostgreSQL (fixtures)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import cycle, product

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker
from nlp_service.webhooks.tables import WebhookEvent

AT = datetime(2024, 3, 10, tzinfo=UTC)  # the window is the day before
CLAIMED = [  # each holds a keyword of a fake topic (tests/conftest.py TOPIC_KEYWORDS)
    "the delivery was late and the parcel arrived damaged",
    "courier left my package at the wrong door",
    "the price went up again, too expensive",
    "a coupon code did not give any discount",
    "I was charged twice on my card",
    "the invoice shows the wrong billing address",
    "my refund for the returned shoes is still missing",
    "the support agent answered quickly, very helpful",
    "the app crashes every time I open the page",
    "cannot reset my password, login fails",
]
# One theme worded several ways. The fake engine's embeddings are bags of words, so variants must share most
# words to be near each other (a real encoder also puts "my bonus points vanished" there).
ENDS = [
    "before I could use them",
    "before I could spend them",
    "before I could redeem them",
    "before I used them",
]
AFTER = ["", " today", " again", " sadly", " last night"]
BURST = [f"{o}my loyalty points expired {e}{a}" for o, e, a in product(["", "all "], ENDS, AFTER)]  # 40 texts


def comments(day: datetime, n_claimed: int, n_burst: int, prefix: str) -> list[dict]:
    items = []
    texts = cycle(CLAIMED)
    for i in range(n_claimed):
        ts = day + timedelta(minutes=7 * i)
        items.append({"id": f"{prefix}-c{i}", "text": next(texts), "created_at": ts.isoformat()})
    for i in range(n_burst):
        ts = day + timedelta(hours=12, minutes=11 * i)
        items.append({"id": f"{prefix}-b{i}", "text": BURST[i % len(BURST)], "created_at": ts.isoformat()})
    return [{**c, "source": "survey", "region": "eu-west"} for c in items]


@pytest.fixture
def client(app_settings: Settings, start_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(
        update={"run_worker_in_process": False, "webhook_allow_loopback": True}
    )
    with start_app(settings) as c:
        yield c


def outbox(database_url: str) -> list[dict]:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as s:
            return [json.loads(b) for b in s.scalars(select(WebhookEvent.body))]
    finally:
        engine.dispose()


def ingest(client: TestClient, items: list[dict]) -> None:
    for i in range(0, len(items), 200):
        r = client.post("/v1/comments", json={"comments": items[i : i + 200]})
        assert r.status_code in (200, 201), r.text


def test_a_burst_of_a_new_complaint_raises_one_suggestion_and_one_emerging_alert(
    client: TestClient, database_url: str
) -> None:
    assert client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9999/hook"}).status_code == 201
    day1, day2 = AT - timedelta(days=2), AT - timedelta(days=1)
    ingest(client, comments(day1, 80, 2, "d1") + comments(day2, 80, 40, "d2"))

    r = client.post("/v1/topics/suggestions/refresh", json={"at": AT.isoformat()})
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["unclaimed"] == 40 and run["previous_unclaimed"] == 2 and run["sampled"] == 40
    assert len(run["suggestions"]) == 1, [s["keywords"] for s in run["suggestions"]]
    (sug,) = run["suggestions"]
    assert sug["size"] == 40 and sug["previous_size"] <= 2 and sug["growth"] >= 40 / 3
    assert "point" in sug["keywords"][:3] or any("point" in k for k in sug["keywords"][:3]), sug["keywords"]
    assert not {"delivery", "parcel", "price"} & set(sug["keywords"])
    assert 3 <= len(sug["representatives"]) <= 5
    assert all("points" in c["text"] for c in sug["representatives"])
    assert sug["mean_sentiment"] is not None and sug["status"] == "open"
    assert len(run["alerts_created"]) == 1 and sug["alert_id"] == run["alerts_created"][0]

    alerts = client.get("/v1/alerts", params={"kind": "emerging_topic"}).json()
    assert alerts["total"] == 1
    (alert,) = alerts["alerts"]
    assert (alert["kind"], alert["status"], alert["topic_id"]) == ("emerging_topic", "new", "_emerging")
    assert alert["observed"] == sug["size"] and alert["baseline"] == sug["previous_size"]
    ex = alert["explanation"]
    assert ex["keywords"] == sug["keywords"] and ex["suggestion_id"] == sug["id"]
    assert (ex["size"], ex["previous_size"], ex["growth"]) == (
        sug["size"],
        sug["previous_size"],
        sug["growth"],
    )
    assert ex["mean_sentiment"] == sug["mean_sentiment"] and sug["keywords"][0] in ex["summary"]
    assert [c["id"] for c in ex["representatives"]] == [c["id"] for c in sug["representatives"]]
    assert [c["id"] for c in alert["representative_comments"]] == ex["sample_comment_ids"]
    created = [e for e in outbox(database_url) if e["type"] == "alert.created"]
    assert [e["data"]["alert"]["kind"] for e in created] == ["emerging_topic"]
    assert created[0]["data"]["alert"]["topic_label"].startswith("Emerging: ")

    # listed; a second run finds the same cluster, links it to the open alert and raises nothing
    listed = client.get("/v1/topics/suggestions").json()["suggestions"]
    assert [s["id"] for s in listed] == [sug["id"]]
    again = client.post("/v1/topics/suggestions/refresh", json={"at": AT.isoformat()}).json()
    assert again["alerts_created"] == []
    (sug2,) = again["suggestions"]
    assert sug2["alert_id"] == alert["id"] and sug2["id"] != sug["id"]
    assert (sug2["keywords"], sug2["size"], sug2["growth"]) == (sug["keywords"], sug["size"], sug["growth"])
    assert [s["id"] for s in client.get("/v1/topics/suggestions").json()["suggestions"]] == [sug2["id"]]
    assert client.get("/v1/alerts", params={"kind": "emerging_topic"}).json()["total"] == 1
    assert len([e for e in outbox(database_url) if e["type"] == "alert.created"]) == 1

    # the usual lifecycle; once resolved, the same cluster may raise a new alert
    assert client.post(f"/v1/alerts/{alert['id']}/resolve").status_code == 200
    third = client.post("/v1/topics/suggestions/refresh", json={"at": AT.isoformat()}).json()
    assert len(third["alerts_created"]) == 1 and third["alerts_created"][0] != alert["id"]


def test_refresh_validates_and_lists_by_window(client: TestClient) -> None:
    future = datetime.now(UTC) + timedelta(days=1)
    r = client.post("/v1/topics/suggestions/refresh", json={"at": future.isoformat()})
    assert r.status_code == 422
    r = client.post("/v1/topics/suggestions/refresh", json={"window_s": 60})
    assert r.status_code == 422 and "window_s" in r.text
    empty = client.post("/v1/topics/suggestions/refresh", json={"at": AT.isoformat()}).json()
    assert (empty["unclaimed"], empty["suggestions"], empty["alerts_created"]) == (0, [], [])

    ingest(client, comments(AT - timedelta(days=1), 10, 30, "w"))
    run = client.post("/v1/topics/suggestions/refresh", json={"at": AT.isoformat()}).json()
    assert len(run["suggestions"]) == 1
    inside = {"start": (AT - timedelta(hours=3)).isoformat(), "end": AT.isoformat()}
    after = {"start": (AT + timedelta(hours=1)).isoformat()}
    assert len(client.get("/v1/topics/suggestions", params=inside).json()["suggestions"]) == 1
    assert client.get("/v1/topics/suggestions", params=after).json()["suggestions"] == []
    assert client.get("/v1/topics/suggestions", params={"status": "accepted"}).json()["suggestions"] == []
    assert client.get("/v1/topics/suggestions", params={"status": "bogus"}).status_code == 422


def test_a_sampled_window_scales_sizes_up(app_settings: Settings, start_app) -> None:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(update={"run_worker_in_process": False, "discovery_sample_cap": 20})
    with start_app(settings) as client:
        ingest(client, comments(AT - timedelta(days=1), 10, 40, "s"))
        run = client.post("/v1/topics/suggestions/refresh", json={"at": AT.isoformat()}).json()
    assert (run["unclaimed"], run["sampled"]) == (40, 20)
    (sug,) = run["suggestions"]
    assert (sug["sampled"], sug["size"]) == (20, 40.0)


def test_one_call_turns_a_suggestion_into_a_topic(client: TestClient) -> None:
    ingest(
        client, comments(AT - timedelta(days=2), 80, 2, "d1") + comments(AT - timedelta(days=1), 80, 40, "d2")
    )
    run = client.post("/v1/topics/suggestions/refresh", json={"at": AT.isoformat()}).json()
    [suggestion] = run["suggestions"]
    assert client.post("/v1/topics/suggestions/nope/accept", json={}).status_code == 404
    r = client.post(
        f"/v1/topics/suggestions/{suggestion['id']}/accept",
        params={"activate": "true"},
        json={"name": "Coupons"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["retag_job"] is not None  # activated: the history is re-tagged
    topic_id = client.get("/v1/topics/taxonomy").json()["topics"][-1]["id"]
    topic = client.get(f"/v1/topics/{topic_id}").json()
    assert topic["name"] == "Coupons"
    assert topic["positives"] == [rep["text"] for rep in suggestion["representatives"]]
    assert topic["method"] == "learned"  # its representatives are enough taught examples
    again = client.post(f"/v1/topics/suggestions/{suggestion['id']}/accept", json={})
    assert again.status_code == 409  # accepted already
    listed = client.get("/v1/topics/suggestions", params={"status": "accepted"}).json()["suggestions"]
    assert [s["id"] for s in listed] == [suggestion["id"]]
