"""Filter lists are bounded: a huge "any of" list is a 422 naming the field, never a 500 from the database."""

from __future__ import annotations

from fastapi.testclient import TestClient

from nlp_service.comments.schemas import MAX_FILTER_VALUES

COMMENT = {
    "id": "c1",
    "text": "the parcel arrived late",
    "created_at": "2024-03-11T08:00:00+00:00",
    "source": "survey",
    "region": "eu-west",
}


def _names(n: int) -> list[str]:
    return [f"r{i}" for i in range(n)]


def test_a_huge_filter_list_is_a_422_not_a_500(app_client: TestClient) -> None:
    assert app_client.post("/v1/comments", json={"comments": [COMMENT]}).status_code == 201
    # 260,000 values: more bound parameters than SQLite allows (250,000 here): a 500 before the limit.
    for field in ("region", "source", "touchpoint", "topic"):
        r = app_client.post("/v1/search", json={"query": "late parcel", "filters": {field: _names(260_000)}})
        assert r.status_code == 422, (field, r.status_code, r.text[:300])
        assert f"filters.{field}" in {d["field"] for d in r.json()["detail"]}
        assert len(r.content) < 2_000  # the list is not echoed back
    many_attrs = {f"k{i}": "v" for i in range(5_000)}
    r = app_client.post("/v1/search", json={"query": "late parcel", "filters": {"attributes": many_attrs}})
    assert r.status_code == 422, r.text[:300]
    assert "filters.attributes" in {d["field"] for d in r.json()["detail"]}


def test_filter_lists_up_to_the_limit_work(app_client: TestClient) -> None:
    assert app_client.post("/v1/comments", json={"comments": [COMMENT]}).status_code == 201
    regions = [*_names(MAX_FILTER_VALUES - 1), "eu-west"]
    r = app_client.post("/v1/search", json={"query": "late parcel", "filters": {"region": regions}})
    assert r.status_code == 200, r.text
    assert [h["id"] for h in r.json()["results"]] == ["c1"]
    params = [("region", v) for v in regions]
    r = app_client.get("/v1/comments", params=params)
    assert r.status_code == 200 and [c["id"] for c in r.json()["comments"]] == ["c1"]
    r = app_client.get("/v1/insights/touchpoints", params=params)
    assert r.status_code == 200 and r.json()["total_comments"] == 1


def test_one_value_too_many_is_a_422_on_every_filtered_route(app_client: TestClient) -> None:
    params = [("region", v) for v in _names(MAX_FILTER_VALUES + 1)]
    for path in ("/v1/comments", "/v1/insights/nps", "/v1/insights/touchpoints"):
        r = app_client.get(path, params=params)
        assert r.status_code == 422, (path, r.status_code, r.text[:300])
        assert any(d["field"].endswith("region") for d in r.json()["detail"]), (path, r.json())
    r = app_client.get("/v1/comments", params=[("attr", f"k{i}:v") for i in range(MAX_FILTER_VALUES + 1)])
    assert r.status_code == 422, r.text[:300]
