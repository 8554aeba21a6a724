"""GET /v1/insights/nps and /v1/insights/touchpoints on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

T0 = datetime(2024, 3, 11, 8, 0, tzinfo=UTC)  # Monday


def c(i: int, text: str, nps: int | None, touchpoint: str, region: str, day: int = 0) -> dict[str, Any]:
    return {
        "id": f"i{i}",
        "text": text,
        "created_at": (T0 + timedelta(days=day, hours=i % 5)).isoformat(),
        "source": "survey",
        "touchpoint": touchpoint,
        "region": region,
        "nps": nps,
    }


@pytest.fixture
def loaded(app_client: TestClient) -> TestClient:
    comments = [
        c(1, "the delivery was late", 0, "delivery", "eu-west"),
        c(2, "parcel arrived damaged and late", 3, "delivery", "eu-west"),
        c(3, "great delivery, fast courier", 10, "delivery", "us-east"),
        c(
            4,
            "I was charged tax on the full price instead of the sale price",
            2,
            "checkout",
            "eu-west",
            day=1,
        ),
        c(5, "easy checkout, good price", 9, "checkout", "us-east", day=1),
        c(6, "checkout was fine", 8, "checkout", "us-east", day=8),
        c(7, "the app crashes on login", None, "app", "us-east", day=8),
    ]
    r = app_client.post("/v1/comments", json={"comments": comments})
    assert r.status_code == 201, r.text
    return app_client


def test_nps_overall_and_grouped(loaded: TestClient) -> None:
    body = loaded.get("/v1/insights/nps").json()
    # 6 responses: promoters 10, 9 -> 2; detractors 0, 3, 2 -> 3; passive 8 -> 1.
    assert body["overall"] == {
        "nps": pytest.approx(-16.67),
        "responses": 6,
        "promoters": 2,
        "passives": 1,
        "detractors": 3,
    }

    regions = {
        g["key"]: g for g in loaded.get("/v1/insights/nps", params={"group_by": "region"}).json()["groups"]
    }
    assert regions["eu-west"]["nps"] == -100.0 and regions["us-east"]["nps"] == pytest.approx(66.67)

    weeks = loaded.get("/v1/insights/nps", params={"group_by": "time", "bucket": "week"}).json()["groups"]
    assert [(g["key"], g["responses"]) for g in weeks] == [("2024-03-11", 5), ("2024-03-18", 1)]
    days = loaded.get("/v1/insights/nps", params={"group_by": "time", "bucket": "day"}).json()["groups"]
    assert [g["key"] for g in days] == ["2024-03-11", "2024-03-12", "2024-03-19"]

    topics = {
        g["key"]: g for g in loaded.get("/v1/insights/nps", params={"group_by": "topic"}).json()["groups"]
    }
    assert topics["delivery_shipping"]["responses"] == 3

    filtered = loaded.get("/v1/insights/nps", params={"region": "us-east", "touchpoint": "checkout"}).json()
    assert filtered["overall"]["responses"] == 2 and filtered["overall"]["nps"] == 50.0

    for bad in ({"group_by": "colour"}, {"bucket": "year"}, {"start": "x"}, {"nps": "1"}):
        assert loaded.get("/v1/insights/nps", params=bad).status_code == 422, bad


def test_touchpoint_impact_map(loaded: TestClient) -> None:
    body = loaded.get("/v1/insights/touchpoints").json()
    assert body["total_comments"] == 7
    by_tp = {t["touchpoint"]: t for t in body["touchpoints"]}
    delivery = by_tp["delivery"]
    assert delivery["comments"] == 3 and delivery["share"] == pytest.approx(3 / 7, abs=1e-4)
    assert delivery["negative_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert delivery["mean_valence"] < 0 < delivery["mean_intensity"]
    assert delivery["top_topics"][0] == {"id": "delivery_shipping", "count": 3, "share": 1.0}
    assert delivery["nps"]["responses"] == 3
    assert by_tp["app"]["nps"]["nps"] is None
    week2 = loaded.get("/v1/insights/touchpoints", params={"start": "2024-03-18T00:00:00+00:00"}).json()
    assert {t["touchpoint"] for t in week2["touchpoints"]} == {"checkout", "app"}


def test_fuzz_findings_answer_4xx_not_500(loaded: TestClient) -> None:
    """Regressions found by schemathesis: each of these was a 500."""
    # a topic filter together with a topic grouping (the subquery's FROM was auto-correlated away)
    r = loaded.get("/v1/insights/nps", params={"group_by": "topic", "topic": "delivery_shipping"})
    assert r.status_code == 200, r.text
    r = loaded.get("/v1/insights/touchpoints", params={"topic": "delivery_shipping"})
    assert r.status_code == 200, r.text
    # a timestamp that overflows when converted to UTC
    r = loaded.get("/v1/insights/touchpoints", params={"start": "0001-01-01T01:00:04+02:00"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "start"
    r = loaded.get("/v1/alerts", params={"since": "0001-01-01T01:00:04+02:00"})
    assert r.status_code == 422
    # a filter whose start is after its end, built from query parameters inside the view
    r = loaded.get("/v1/comments", params={"start": "2024-03-02T00:00:00Z", "end": "2024-03-01T00:00:00Z"})
    assert r.status_code == 422, r.text
