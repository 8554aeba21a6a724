"""Ingest, get, list, delete through real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from nlp_service.comments import queries
from nlp_service.comments.embeddings import unpack_sentences
from nlp_service.comments.schemas import CommentFilter
from nlp_service.comments.tables import Comment, Prediction
from nlp_service.topics import service as topic_counts

T0 = datetime(2024, 3, 11, 8, 0, tzinfo=UTC)  # a Monday


def comment(i: int, text: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {
        "id": f"c{i}",
        "text": text or f"The delivery number {i} was late and the parcel arrived damaged",
        "created_at": (T0 + timedelta(hours=i)).isoformat(),
        "source": "survey",
        "touchpoint": "delivery",
        "region": "eu-west" if i % 2 else "us-east",
        "nps": i % 11,
        "attributes": {"plan": "pro" if i % 3 == 0 else "basic"},
    }
    body.update(extra)
    return body


def post(client: TestClient, comments: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    return client.post("/v1/comments", json={"comments": comments})


def count_rows(client: TestClient) -> int:
    with client.app.state.nlp.db() as session:  # type: ignore[attr-defined]
        return queries.count(db_session=session)


def test_create_then_idempotent_then_mixed(app_client: TestClient, fake_engine) -> None:
    r = post(app_client, [comment(1), comment(2)])
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 2
    assert [x["status"] for x in r.json()["results"]] == ["created", "created"]
    analysed = sum(fake_engine.calls)

    r = post(app_client, [comment(1), comment(2)])
    assert r.status_code == 200
    assert r.json() == {
        "created": 0,
        "existing": 2,
        "results": [
            {"index": 0, "id": "c1", "status": "existing"},
            {"index": 1, "id": "c2", "status": "existing"},
        ],
    }
    assert sum(fake_engine.calls) == analysed  # known comments are not analysed again

    # Same instant in another time zone is the same payload.
    same = comment(1, created_at=(T0 + timedelta(hours=1)).astimezone(UTC).isoformat().replace("+00:00", "Z"))
    r = post(app_client, [same, comment(3)])
    assert r.status_code == 201
    assert [x["status"] for x in r.json()["results"]] == ["existing", "created"]
    assert count_rows(app_client) == 3


def test_get_returns_stored_analysis(app_client: TestClient) -> None:
    post(app_client, [comment(1, customer_id="cust-9", csat=2)])
    body = app_client.get("/v1/comments/c1").json()
    assert body["id"] == "c1"
    assert body["created_at"] == "2024-03-11T09:00:00Z"
    assert body["customer_id"] == "cust-9" and body["csat"] == 2
    assert body["attributes"] == {"plan": "basic"}
    analysis = body["analysis"]
    assert analysis["sentiment"]["label"] == "negative"
    assert set(analysis["sentiment"]["probabilities"]) == {"negative", "neutral", "positive"}
    assert analysis["emotion"]["dominant"] == "anger"
    assert [t["id"] for t in analysis["topics"]] == ["delivery_shipping"]
    assert analysis["model_versions"]["encoder"] == "fake-hashing@0"


def test_ingest_stores_sentence_embeddings_of_multi_sentence_comments(app_client: TestClient) -> None:
    from tests.conftest import hashed_embedding

    two = "The delivery was late again. The app keeps crashing on login."
    r = post(app_client, [comment(1, two), comment(2, "The delivery was late and the parcel was damaged.")])
    assert r.status_code == 201, r.text
    with app_client.app.state.nlp.db() as session:  # type: ignore[attr-defined]
        rows = dict(
            session.execute(
                select(Comment.id, Prediction).join(Prediction, Prediction.row_id == Comment.row_id)
            ).all()
        )
    stored = unpack_sentences(rows["c1"].sentence_embeddings, 384)
    assert stored is not None and stored.shape == (2, 384)
    expected = np.vstack([hashed_embedding("The delivery was late again."), hashed_embedding(two[29:])])
    np.testing.assert_allclose(stored, expected, atol=1e-3)  # float16
    assert rows["c2"].sentence_embeddings is None  # one sentence: its own embedding stands for it
    assert rows["c1"].topics_version == 1  # the active taxonomy version (seeded from the shipped file)


def test_conflicting_payload_is_409_and_nothing_stored(app_client: TestClient) -> None:
    post(app_client, [comment(1)])
    r = post(app_client, [comment(5), comment(1, text="a different text")])
    assert r.status_code == 409
    assert r.json()["detail"][0]["field"] == "comments[1].id"
    assert app_client.get("/v1/comments/c5").status_code == 404


def test_invalid_item_rejects_whole_batch(app_client: TestClient) -> None:
    naive = comment(2, created_at="2024-03-11T10:00:00")
    r = post(app_client, [comment(1), naive, comment(3, nps=11)])
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["detail"]}
    assert {"comments[1].created_at", "comments[2].nps"} <= fields
    assert count_rows(app_client) == 0


def test_batch_validation_errors(app_client: TestClient) -> None:
    r = post(app_client, [comment(1), comment(2), comment(1)])
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "comments[2].id"
    assert "duplicate" in r.json()["error"]
    assert post(app_client, []).status_code == 422
    many = [comment(i) for i in range(1001)]
    assert post(app_client, many).status_code == 422
    for bad in (
        {"created_at": "yesterday"},
        {"text": "   "},
        {"nps": -1},
        {"nps": 3.5},
        {"unknown": 1},
        {"attributes": {"k": 3}},
    ):
        r = post(app_client, [comment(1, **bad)])
        assert r.status_code == 422, bad
        assert r.json()["detail"][0]["field"].startswith("comments[0]"), r.json()
    assert count_rows(app_client) == 0


def test_nul_characters_are_422_not_500(app_client: TestClient) -> None:
    """PostgreSQL text cannot hold NUL: such a comment is refused up front on every database."""
    for bad, field in (
        ({"text": "a\u0000b"}, "text"),
        ({"id": "c\u00001"}, "id"),
        ({"region": "eu\u0000"}, "region"),
        ({"attributes": {"k": "\u0000"}}, "attributes"),
        ({"attributes": {"k\u0000": "v"}}, "attributes"),
    ):
        r = post(app_client, [comment(1, **bad)])
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["detail"][0]["field"].startswith(f"comments[0].{field}"), r.json()
    assert count_rows(app_client) == 0


def test_unknown_ids_are_404(app_client: TestClient) -> None:
    assert app_client.get("/v1/comments/nope").status_code == 404
    assert app_client.delete("/v1/comments/nope").status_code == 404


def test_delete_removes_comment_counts_and_search_entry(app_client: TestClient) -> None:
    post(app_client, [comment(1), comment(2)])
    with app_client.app.state.nlp.db() as session:  # type: ignore[attr-defined]
        before = topic_counts.topic_series(
            db_session=session, bucket="day", start=T0 - timedelta(days=1), end=T0 + timedelta(days=2)
        )
    totals = {p.topic_id: p.count for p in before}
    assert totals == {"_all": 2, "delivery_shipping": 2}

    assert app_client.delete("/v1/comments/c1").status_code == 204
    assert app_client.get("/v1/comments/c1").status_code == 404
    with app_client.app.state.nlp.db() as session:  # type: ignore[attr-defined]
        after = topic_counts.topic_series(
            db_session=session, bucket="day", start=T0 - timedelta(days=1), end=T0 + timedelta(days=2)
        )
    assert {p.topic_id: p.count for p in after} == {"_all": 1, "delivery_shipping": 1}
    hits = app_client.post("/v1/search", json={"query": "delivery late parcel", "k": 5}).json()["results"]
    assert [h["id"] for h in hits] == ["c2"]
    assert 1 not in app_client.app.state.nlp.search.index  # type: ignore[attr-defined]
    # The id can be ingested again afterwards.
    assert post(app_client, [comment(1)]).status_code == 201


def test_topic_counts_per_segment_and_bucket(app_client: TestClient) -> None:
    post(app_client, [comment(1), comment(2), comment(3, text="great app, easy login")])
    with app_client.app.state.nlp.db() as session:  # type: ignore[attr-defined]
        hourly = topic_counts.topic_series(
            db_session=session,
            bucket="hour",
            start=T0,
            end=T0 + timedelta(days=1),
            topic_ids=["delivery_shipping"],
            segment="region",
        )
        assert [(p.segment_value, p.bucket_start.hour, p.count, p.negative) for p in hourly] == [
            ("eu-west", 9, 1, 1),
            ("us-east", 10, 1, 1),
        ]
        window = queries.comments_in_window(
            db_session=session,
            start=T0,
            end=T0 + timedelta(days=1),
            filters=CommentFilter(topic=["delivery_shipping"], region=["eu-west"]),
        )
    assert [c.id for c in window] == ["c1"]
    assert window[0].embedding is not None and window[0].embedding.shape == (384,)


def test_list_filters_and_cursor(app_client: TestClient) -> None:
    post(app_client, [comment(i) for i in range(1, 8)] + [comment(8, text="great support, thanks")])
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = app_client.get("/v1/comments", params=params).json()
        seen += [c["id"] for c in page["comments"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"c{i}" for i in range(8, 0, -1)]

    def ids(**params: Any) -> list[str]:
        r = app_client.get("/v1/comments", params=params)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["comments"]]

    assert ids(region="eu-west") == ["c7", "c5", "c3", "c1"]
    assert ids(sentiment="positive") == ["c8"]
    assert ids(topic="customer_support") == ["c8"]
    assert ids(attr="plan:pro") == ["c6", "c3"]
    assert ids(nps_min=5, nps_max=6) == ["c6", "c5"]
    assert ids(start="2024-03-11T12:00:00Z", end="2024-03-11T14:00:00Z") == ["c5", "c4"]
    assert ids(region=["eu-west", "us-east"], source="survey", limit=2) == ["c8", "c7"]

    for bad in (
        {"colour": "red"},
        {"start": "not-a-date"},
        {"start": "2024-03-11T12:00:00"},
        {"cursor": "xx"},
    ):
        r = app_client.get("/v1/comments", params=bad)
        assert r.status_code == 422, bad
        assert r.json()["detail"], bad


def test_concurrent_ingest_of_same_ids_stores_once(app_client: TestClient) -> None:
    batch = [comment(i) for i in range(1, 21)]
    statuses: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            statuses.append(post(app_client, batch).status_code)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(statuses)[-1] == 201 and set(statuses) <= {200, 201}
    assert count_rows(app_client) == 20
    with app_client.app.state.nlp.db() as session:  # type: ignore[attr-defined]
        day = topic_counts.topic_series(
            db_session=session,
            bucket="day",
            start=T0 - timedelta(days=1),
            end=T0 + timedelta(days=2),
            topic_ids=["_all"],
        )
    assert sum(p.count for p in day) == 20
    assert len(app_client.app.state.nlp.search.index) == 20  # type: ignore[attr-defined]


def test_nul_characters_in_reads_are_422_not_500(app_client: TestClient) -> None:
    """A NUL in a filter, an id or a search filter reaches PostgreSQL as a query parameter it refuses: that is
    the client's input, so a clear 422 (SQLite stores and compares it: no match)."""
    for method, path, kwargs in (
        ("GET", "/v1/comments", {"params": {"region": "eu\u0000"}}),
        ("GET", "/v1/comments/c%00x", {}),
        ("POST", "/v1/search", {"json": {"comment_id": "c\u0000x"}}),
        ("GET", "/v1/alerts", {"params": {"topic": "t\u0000"}}),
    ):
        r = app_client.request(method, path, **kwargs)  # type: ignore[arg-type]
        assert r.status_code in (200, 404, 422), (path, r.status_code, r.text)
        if r.status_code == 422:
            assert "NUL" in r.json()["error"], r.text
