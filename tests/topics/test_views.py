"""GET /v1/topics on SQLite and PostgreSQL (the comments of ``tests/insights``)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.insights import test_insights

loaded = test_insights.loaded  # the fixture: comments over two weeks


def test_topics_with_counts(loaded: TestClient) -> None:
    body = loaded.get("/v1/topics").json()
    assert body["taxonomy"]["name"] == "customer-experience"
    assert body["total_comments"] == 7
    by_id = {t["id"]: t for t in body["topics"]}
    assert len(by_id) >= 12  # every taxonomy topic is listed, with 0 when absent
    assert by_id["delivery_shipping"]["count"] == 3 and by_id["delivery_shipping"]["negative"] == 2
    assert by_id["pricing_promotions"]["count"] == 2
    assert by_id["onboarding"]["count"] == 0
    assert body["topics"][0]["id"] == "delivery_shipping"

    ranged = loaded.get("/v1/topics", params={"start": "2024-03-12T00:00:00Z", "end": "2024-03-13T00:00:00Z"})
    assert ranged.json()["total_comments"] == 2
    assert loaded.get("/v1/topics", params={"start": "2024-03-12"}).status_code == 422
    assert loaded.get("/v1/topics", params={"bogus": "1"}).status_code == 422
