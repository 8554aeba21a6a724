"""POST /v1/search: ranking, filters (filter-first and over-fetch), hybrid, validation, restart catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nlp_service.comments import service as comments_service

T0 = datetime(2024, 3, 11, 8, 0, tzinfo=UTC)
TEMPLATES = [
    "the delivery was late and the parcel arrived damaged",
    "great support, the agent was friendly and helpful",
    "I was charged tax on the full price instead of the sale price",
    "the app crashes every time I open the login page",
    "still waiting for my refund after the return",
]
REGIONS = ["eu-west", "us-east", "apac"]


def corpus(n: int = 60) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        out.append(
            {
                "id": f"s{i}",
                "text": f"{TEMPLATES[i % len(TEMPLATES)]} (ticket {i})",
                "created_at": (T0 + timedelta(hours=i)).isoformat(),
                "source": "chat" if i % 4 == 0 else "survey",
                "touchpoint": "checkout" if i % 5 == 2 else "delivery",
                "region": REGIONS[i % 3],
                "nps": i % 11,
                "attributes": {"plan": "pro" if i % 6 == 0 else "basic"},
            }
        )
    return out


def ingest(client: TestClient, comments: list[dict[str, Any]]) -> None:
    r = client.post("/v1/comments", json={"comments": comments})
    assert r.status_code == 201, r.text


def search(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/search", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_query_and_more_like_this(app_client: TestClient) -> None:
    ingest(app_client, corpus())
    out = search(app_client, query="charged tax on the full price instead of the sale price", k=5)
    assert len(out["results"]) == 5
    assert all("tax on the full price" in h["text"] for h in out["results"])
    scores = [h["score"] for h in out["results"]]
    assert scores == sorted(scores, reverse=True)
    hit = out["results"][0]
    assert {
        "id",
        "text",
        "score",
        "created_at",
        "sentiment",
        "topics",
        "region",
        "touchpoint",
        "source",
    } <= set(hit)

    out = search(app_client, comment_id="s7", k=3)
    assert out["results"][0]["id"] == "s7"
    assert out["results"][0]["score"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("filter_first_max", [20_000, 1])
def test_filters_return_k_matches(app_settings, start_app, filter_first_max: int) -> None:
    """Selective filters are scored exactly; with filter-first disabled, over-fetching still finds k."""
    settings = app_settings.model_copy(update={"search_filter_first_max": filter_first_max})
    with start_app(settings) as client:
        ingest(client, corpus())
        query = "the delivery was late and the parcel arrived damaged"
        cases: list[tuple[dict[str, Any], Any]] = [
            ({"region": "apac"}, lambda h: h["region"] == "apac"),
            ({"source": "chat", "region": ["eu-west", "apac"]}, lambda h: h["source"] == "chat"),
            ({"touchpoint": "checkout"}, lambda h: h["touchpoint"] == "checkout"),
            ({"sentiment": "positive"}, lambda h: h["sentiment"] == "positive"),
            (
                {"topic": "pricing_promotions"},
                lambda h: "pricing_promotions" in {t["id"] for t in h["topics"]},
            ),
            ({"nps_min": 9, "nps_max": 10}, lambda h: h["nps"] >= 9),
            ({"attributes": {"plan": "pro"}}, lambda h: h["attributes"]["plan"] == "pro"),
            (
                {
                    "start": (T0 + timedelta(hours=10)).isoformat(),
                    "end": (T0 + timedelta(hours=20)).isoformat(),
                },
                lambda h: (
                    T0 + timedelta(hours=10)
                    <= datetime.fromisoformat(h["created_at"])
                    < T0 + timedelta(hours=20)
                ),
            ),
        ]
        for filters, ok in cases:
            out = search(client, query=query, k=8, filters=filters)
            assert len(out["results"]) == 8, (filters, out)
            assert all(ok(h) for h in out["results"]), filters
            expected = "filter_first" if filter_first_max > 1 else "index"
            assert out["strategy"] == expected
        # Fewer matches than k: all of them.
        out = search(client, query=query, k=50, filters={"region": "apac", "source": "chat"})
        assert len(out["results"]) == 5


def test_hybrid_finds_exact_codes(app_client: TestClient) -> None:
    comments = corpus(40)
    comments.append(
        {
            "id": "order",
            "text": "Where is order ORD-88812? Nobody answers.",
            "created_at": T0.isoformat(),
            "source": "email",
        }
    )
    ingest(app_client, comments)
    out = search(app_client, query="ORD-88812", k=3, mode="hybrid")
    assert out["results"][0]["id"] == "order"
    assert out["results"][0]["keyword_score"] > 0
    out = search(app_client, query="88812", k=3, mode="hybrid")
    assert out["results"][0]["id"] == "order"
    # Lemmas: "refunds" matches "refund".
    out = search(app_client, query="refunds", k=5, mode="hybrid", filters={"region": "apac"})
    assert out["results"] and all(h["region"] == "apac" for h in out["results"])
    assert "refund" in out["results"][0]["text"]


def test_bad_requests(app_client: TestClient) -> None:
    ingest(app_client, corpus(5))
    cases = [
        ({"query": "x", "k": 0}, 422, "k"),
        ({"query": "x", "k": 101}, 422, "k"),
        ({}, 422, "body"),
        ({"query": "x", "comment_id": "s1"}, 422, "body"),
        ({"query": "x", "filters": {"colour": "red"}}, 422, "filters.colour"),
        ({"query": "x", "filters": {"start": "2024-13-01"}}, 422, "filters.start"),
        ({"query": "x", "filters": {"start": "2024-03-01T00:00:00"}}, 422, "filters.start"),
        ({"query": "x", "filters": {"nps_min": 11}}, 422, "filters.nps_min"),
        ({"query": "x", "filters": {"sentiment": "angry"}}, 422, "filters.sentiment[0]"),
        ({"query": "x", "mode": "fuzzy"}, 422, "mode"),
        ({"query": "x", "unknown": 1}, 422, "unknown"),
        ({"comment_id": "missing"}, 404, "comment_id"),
    ]
    for body, status, field in cases:
        r = app_client.post("/v1/search", json=body)
        assert r.status_code == status, (body, r.text)
        assert field in {d["field"] for d in r.json()["detail"]}, (body, r.json())


def test_restart_catches_up_from_the_database(app_settings, start_app) -> None:
    settings = app_settings
    with start_app(settings) as client:
        ingest(client, corpus(30))
    assert (settings.var_dir / "search" / "vectors.faiss").is_file()

    # While the service is down: one comment deleted, one added, behind the index's back.
    from nlp_service.db import make_engine, make_sessionmaker, session_scope

    engine = make_engine(settings.resolved_database_url())
    with session_scope(make_sessionmaker(engine)) as session:
        comments_service.delete(db_session=session, comment_id="s3")
    engine.dispose()
    with start_app(settings) as client:
        ingest(client, [{**corpus(31)[30], "id": "late"}])
        status = client.get("/v1/search/index").json()
        assert status["size"] == 30 and status["ready"]
        assert search(client, comment_id="s4", k=1)["results"][0]["id"] == "s4"
        assert "s3" not in {h["id"] for h in search(client, comment_id="s8", k=30)["results"]}


def test_hnsw_above_threshold_with_deletes(app_settings, start_app) -> None:
    settings = app_settings.model_copy(update={"search_exact_max": 20})
    with start_app(settings) as client:
        ingest(client, corpus(50))
        index = client.app.state.nlp.search.index  # type: ignore[attr-defined]
        assert index.wait(30)
        assert index.kind == "hnsw" and len(index) == 50
        assert client.delete("/v1/comments/s10").status_code == 204
        ids = {h["id"] for h in search(client, comment_id="s15", k=49)["results"]}
        assert "s10" not in ids and len(ids) == 49
        assert search(client, comment_id="s15", k=1)["results"][0]["id"] == "s15"


def test_filtered_over_fetch_is_capped(app_settings, start_app, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filter too broad for filter-first whose matches are far from the query: the over-fetch stops at
    ``search_max_fetch`` (it used to grow to the whole index) and the response says it is capped."""
    settings = app_settings.model_copy(update={"search_filter_first_max": 5, "search_max_fetch": 50})
    rare = [
        {"id": f"k{i}", "text": f"kiosk login password reset code {i}", "created_at": T0.isoformat()}
        for i in range(10)
    ]
    with start_app(settings) as client:
        ingest(client, corpus(200) + [{**c, "source": "kiosk"} for c in rare])
        index = client.app.state.nlp.search.index  # type: ignore[attr-defined]
        asked: list[int] = []
        real_search = index.search

        def spy(queries: Any, k: int) -> Any:
            asked.append(k)
            return real_search(queries, k)

        monkeypatch.setattr(index, "search", spy)
        query = "the delivery was late and the parcel arrived damaged"
        out = search(client, query=query, k=10, filters={"source": "kiosk"})
        assert asked and max(asked) <= 50, asked
        assert out["strategy"] == "index" and out["capped"] is True
        assert len(out["results"]) < 10 and all(h["source"] == "kiosk" for h in out["results"])
        # A filter that many near neighbours pass: k results, not capped.
        asked.clear()
        out = search(client, query=query, k=10, filters={"source": "survey"})
        assert len(out["results"]) == 10 and "capped" not in out
        assert max(asked) <= 50
        # Hybrid mode fetches deeper (50 per side): still within the cap, and the capped flag carries over.
        out = search(client, query=query, k=10, mode="hybrid", filters={"source": "kiosk"})
        assert max(asked) <= 50 and out["capped"] is True
        assert all(h["source"] == "kiosk" for h in out["results"])
