"""``GET /ui/api/overview``: the overview page's one call, on demo data with an incident."""

from __future__ import annotations

import math

from fastapi.testclient import TestClient

from nlp_service.ui.service import band


def test_band_is_poisson_two_sigma_floored_at_zero() -> None:
    assert band(None) == (None, None)
    assert band(100.0) == (80.0, 120.0)
    low, high = band(1.0)
    assert low == 0.0 and math.isclose(high or 0, 3.0)


def test_overview_has_series_with_band_alerts_and_trends(demo_client: TestClient) -> None:
    response = demo_client.get("/ui/api/overview", params={"days": 28})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["bucket"] == "day"
    assert data["end"].startswith("2024-04-01")  # the midnight after the newest comment
    assert 1 <= len(data["topics"]) <= 5 and not data["needs"]
    for topic in data["topics"]:
        assert len(topic["points"]) == 28 and topic["total"] == sum(p["count"] for p in topic["points"])
        for p in topic["points"]:
            if p["expected"] is not None:
                assert p["low"] <= p["expected"] <= p["high"]
    assert data["alerts"], "the incident's alert is on the overview"
    assert any(a["topic_id"] == "pricing_promotions" for a in data["alerts"])
    assert len(data["sentiment"]) == 28
    assert all(0 <= p["negative_share"] <= 1 for p in data["sentiment"] if p["comments"])
    assert data["nps"] and all(-100 <= g["nps"] <= 100 for g in data["nps"] if g["nps"] is not None)
    assert "eu-west" in data["segments"]["region"]
    (incident,) = data["incidents"]  # the demo's incident, with its window for the chart's band
    assert incident["id"].startswith("inc_") and "eu-west" in incident["headline"]
    assert incident["window_start"].startswith("2024-03-25") and incident["status"] == "new"
    assert incident["window_end"].startswith("2024-03-26")  # one day

    everything = data
    eu = demo_client.get("/ui/api/overview", params={"segment": "region", "value": "eu-west"}).json()
    assert sum(p["comments"] for p in eu["sentiment"]) < sum(p["comments"] for p in everything["sentiment"])
    assert all(a["segment"] == "all" or a["segment_value"] == "eu-west" for a in eu["alerts"])
    assert [i["id"] for i in eu["incidents"]] == [incident["id"]]  # carried by eu-west
    us = demo_client.get("/ui/api/overview", params={"segment": "region", "value": "us-east"}).json()
    assert us["incidents"] == []
    week = demo_client.get("/ui/api/overview", params={"days": 7}).json()
    assert len(week["sentiment"]) == 7
    before = demo_client.get("/ui/api/overview", params={"days": 7, "end": "2024-03-20T00:00:00Z"}).json()
    assert before["incidents"] == []  # the period ends before the incident


def test_overview_refuses_bad_filters(app_client: TestClient) -> None:
    assert app_client.get("/ui/api/overview").json()["topics"] == []  # no comments yet: empty, not an error
    for params in ({"segment": "region"}, {"days": 0}, {"segment": "planet", "value": "x"}, {"topics": 99}):
        response = app_client.get("/ui/api/overview", params=params)
        assert response.status_code == 422, (params, response.text)
