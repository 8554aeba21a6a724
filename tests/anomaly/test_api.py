"""``POST /v1/detect/series`` and ``/v1/detect`` input handling, ``GET /v1/alerts`` filters, scope."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

DAY = 86400
T0 = 1_709_510_400  # 2024-03-04 00:00 UTC, a Monday


def series(n: int = 42, spike_at: int | None = 35) -> dict:
    rng = np.random.default_rng(3)
    values = rng.poisson(30, size=n).astype(float)
    if spike_at is not None:
        values[spike_at] = 150
    return {"timestamps": [T0 + i * DAY for i in range(n)], "values": values.tolist(), "bucket_seconds": DAY}


def test_detect_series_finds_the_spike(app_client: TestClient) -> None:
    r = app_client.post("/v1/detect/series", json=series())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["points"] == 42 and body["season_seconds"] == 7 * DAY
    assert [s["index"] for s in body["spikes"]] == [35]
    assert body["spikes"][0]["timestamp"].startswith("2024-04-08") and body["spikes"][0]["kind"] == "spike"
    assert body["episodes"][0]["buckets"] == 1 and body["change_points"] == []
    assert body["expected"][0] is None and 20 < body["expected"][35] < 40
    iso = series()
    iso["timestamps"] = [f"2024-03-{4 + i:02d}T00:00:00Z" for i in range(20)]
    iso["values"] = iso["values"][:20]
    assert app_client.post("/v1/detect/series", json=iso).status_code == 200


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"values": [1.0] * 41}, "equal lengths"),
        ({"timestamps": [T0 + i * DAY for i in range(41)] + [T0]}, "strictly increasing"),
        ({"timestamps": [T0 + i * DAY + (7 if i == 5 else 0) for i in range(42)]}, "bucket grid"),
        ({"values": [1.0] * 41 + [-1.0]}, "non-negative"),
        ({"timestamps": [T0], "values": [1.0]}, "at least 8 points"),
        ({"bucket_seconds": 0}, "bucket_seconds"),
    ],
)
def test_detect_series_validation(app_client: TestClient, change: dict, message: str) -> None:
    r = app_client.post("/v1/detect/series", json={**series(), **change})
    assert r.status_code == 422, r.text
    assert message in r.text


def test_detect_series_refuses_nan_and_non_json(app_client: TestClient) -> None:
    stamps = ", ".join(str(T0 + i * DAY) for i in range(10))
    raw = (
        f'{{"timestamps": [{stamps}], "values": [1, 2, 3, NaN, 5, 6, 7, 8, 9, 10], "bucket_seconds": {DAY}}}'
    )
    r = app_client.post("/v1/detect/series", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "values[3] must be finite" in r.text
    r = app_client.post("/v1/detect/series", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415


def test_detect_and_list_validation(app_client: TestClient) -> None:
    r = app_client.post("/v1/detect", json={"lookback_s": -1})
    assert r.status_code == 422 and "lookback_s" in r.json()["error"]
    r = app_client.post("/v1/detect", json={"at": "2024-03-04T00:00:00"})  # no time zone
    assert r.status_code == 422 and "at" in r.json()["error"]
    r = app_client.post("/v1/detect")
    assert r.status_code == 200 and r.json()["alerts_created"] == 0
    assert app_client.get("/v1/alerts", params={"status": "bogus"}).status_code == 422
    r = app_client.get(
        "/v1/alerts", params={"since": "2024-03-05T00:00:00Z", "until": "2024-03-04T00:00:00Z"}
    )
    assert r.status_code == 422 and "since must be before until" in r.text
    r = app_client.get("/v1/alerts", params={"status": ["open", "overdue"], "severity": "high", "limit": 5})
    assert r.status_code == 200 and r.json() == {"alerts": [], "total": 0, "limit": 5, "offset": 0}


def test_alert_routes_need_the_alerts_scope(app_client: TestClient) -> None:
    from nlp_service.auth.deps import route_scopes

    scopes = {(r.method, r.path): r.scope for r in route_scopes(app_client.app)}  # type: ignore[arg-type]
    for key in [("GET", "/v1/alerts"), ("POST", "/v1/detect"), ("GET", "/v1/topics/{topic_id}/series")]:
        assert scopes[key] == "alerts", key


def test_alert_filter_lists_are_bounded(app_client: TestClient) -> None:
    """Finding 16: every "any of" list of GET /v1/alerts is bounded (a huge one was a database error)."""
    from nlp_service.comments.schemas import MAX_FILTER_VALUES

    topics = "&".join(f"topic=t{i}" for i in range(MAX_FILTER_VALUES + 1))
    r = app_client.get(f"/v1/alerts?{topics}")
    assert r.status_code == 422, r.text[:300]
    assert len(r.content) < 2_000  # the list is not echoed back
    statuses = "&".join(["status=new"] * (MAX_FILTER_VALUES + 1))
    assert app_client.get(f"/v1/alerts?{statuses}").status_code == 422
    fine = "&".join(f"topic=t{i}" for i in range(MAX_FILTER_VALUES))
    assert app_client.get(f"/v1/alerts?{fine}").status_code == 200
