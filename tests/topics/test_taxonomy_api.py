"""The taxonomy as versioned data through the API (fake engine, real SQLite/PostgreSQL): topics, examples,
import/export, versions, activation, rollback, and a clear 4xx for every bad input with nothing changed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

TAX_TOPIC = {
    "id": "sales_tax",
    "name": "Sales tax",
    "description": "customers charged the wrong sales tax",
    "examples": ["I was charged too much sales tax", "the tax on my order is wrong"],
}


def versions(client: TestClient) -> list[dict[str, Any]]:
    r = client.get("/v1/topics/versions")
    assert r.status_code == 200, r.text
    return r.json()


def test_seeded_from_the_shipped_file_and_active(app_client: TestClient) -> None:
    [v1] = versions(app_client)
    assert v1["id"] == 1 and v1["active"] and v1["topics"] == 12
    exported = app_client.get("/v1/topics/taxonomy").json()
    assert exported["name"] == "customer-experience" and len(exported["topics"]) == 12


def test_create_get_update_delete_make_versions(app_client: TestClient) -> None:
    r = app_client.post("/v1/topics", json=TAX_TOPIC)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["version"]["id"] == 2 and not body["version"]["active"] and body["active_version"] == 1
    assert body["retag_job"] is None

    topic = app_client.get("/v1/topics/sales_tax").json()
    assert topic["method"] == "zero_shot" and topic["version"] == 2
    assert app_client.get("/v1/topics/sales_tax", params={"version": 1}).status_code == 404

    r = app_client.patch("/v1/topics/sales_tax", json={"parent": "billing_payments", "threshold": 0.3})
    assert r.status_code == 200, r.text
    topic = app_client.get("/v1/topics/sales_tax").json()
    assert topic["parent"] == "billing_payments" and topic["threshold"] == 0.3
    assert topic["description"] == TAX_TOPIC["description"]  # untouched fields stay

    # a parent with sub-topics cannot go; the sub-topic can
    assert app_client.delete("/v1/topics/billing_payments").status_code == 409
    assert app_client.delete("/v1/topics/sales_tax").status_code == 200
    assert [v["id"] for v in versions(app_client)] == [4, 3, 2, 1]


def test_bad_input_is_refused_and_changes_nothing(app_client: TestClient) -> None:
    before = versions(app_client)
    assert app_client.post("/v1/topics", json={**TAX_TOPIC, "id": "delivery_shipping"}).status_code == 409
    assert app_client.get("/v1/topics/nope").status_code == 404
    assert app_client.patch("/v1/topics/nope", json={"name": "x"}).status_code == 404
    assert app_client.delete("/v1/topics/nope").status_code == 404
    assert app_client.post("/v1/topics/nope/examples", json={"positive": [{"text": "x"}]}).status_code == 404
    assert app_client.post("/v1/topics", json={**TAX_TOPIC, "parent": "nope"}).status_code == 422
    assert app_client.post("/v1/topics", json={**TAX_TOPIC, "id": "versions"}).status_code == 422

    r = app_client.post(
        "/v1/topics/delivery_shipping/examples",
        json={"positive": [{"comment_id": "ghost-1"}, {"text": "late parcel"}, {"comment_id": "ghost-2"}]},
    )
    assert r.status_code == 422 and "ghost-1" in r.text and "ghost-2" in r.text

    broken = app_client.get("/v1/topics/taxonomy").json()
    broken["topics"][3]["threshold"] = "high"
    r = app_client.put("/v1/topics/taxonomy", json=broken)
    assert r.status_code == 422
    assert broken["topics"][3]["id"] in r.json()["error"] and "threshold" in r.json()["error"]

    r = app_client.post("/v1/topics/versions/99/activate")
    assert r.status_code == 404
    assert app_client.get("/v1/topics/jobs/retag_nope").status_code == 404
    assert app_client.post("/v1/topics/rollback").status_code == 409  # nothing was active before v1
    assert versions(app_client) == before


def test_examples_by_comment_id_teach_a_learned_topic(app_client: TestClient) -> None:
    texts = [
        "charged sales tax twice on my order",
        "the sales tax was wrong again",
        "why is there tax on a tax-free item",
        "tax amount on the receipt is too high",
        "overcharged tax in my state",
        "the app crashed at checkout",
    ]
    comments = [
        {"id": f"c{i}", "text": t, "created_at": "2026-11-01T10:00:00Z", "source": "survey"}
        for i, t in enumerate(texts)
    ]
    assert app_client.post("/v1/comments", json={"comments": comments}).status_code in (200, 201)
    assert app_client.post("/v1/topics", json=TAX_TOPIC).status_code == 201
    r = app_client.post(
        "/v1/topics/sales_tax/examples",
        json={
            "positive": [{"comment_id": f"c{i}"} for i in range(5)],
            "negative": [{"comment_id": "c5"}, {"text": "delivery was late"}],
        },
    )
    assert r.status_code == 200, r.text
    topic = app_client.get("/v1/topics/sales_tax").json()
    assert topic["method"] == "learned"
    assert topic["positives"][0] == texts[0] and "delivery was late" in topic["negatives"]
    assert 0.0 <= topic["cv_precision"] <= 1.0 and 0.0 <= topic["cv_recall"] <= 1.0
    detail = app_client.get(f"/v1/topics/versions/{r.json()['version']['id']}").json()
    assert detail["quality"]["sales_tax"]["method"] == "learned"


def test_activate_queues_a_retag_and_rollback_returns(app_client: TestClient) -> None:
    assert app_client.post("/v1/topics", json=TAX_TOPIC).status_code == 201
    r = app_client.post("/v1/topics/versions/2/activate")
    assert r.status_code == 202, r.text
    job = r.json()["retag_job"]
    assert job["version_id"] == 2 and job["status"] in ("queued", "running", "succeeded")
    assert app_client.get(f"/v1/topics/jobs/{job['id']}").json()["id"] == job["id"]
    assert [v["id"] for v in versions(app_client) if v["active"]] == [2]
    again = app_client.post("/v1/topics/versions/2/activate").json()
    assert again["retag_job"] is None  # already active: nothing to do

    r = app_client.post("/v1/topics/rollback")
    assert r.status_code == 202 and r.json()["active_version"] == 1


def test_import_export_round_trip(app_client: TestClient) -> None:
    exported = app_client.get("/v1/topics/taxonomy").json()
    exported["topics"].append(TAX_TOPIC)
    r = app_client.put("/v1/topics/taxonomy", params={"activate": "true"}, json=exported)
    assert r.status_code == 200, r.text
    assert r.json()["active_version"] == 2 and r.json()["retag_job"] is not None
    again = app_client.get("/v1/topics/taxonomy").json()
    assert [t["id"] for t in again["topics"]][-1] == "sales_tax" and again["version"] == "2"


def test_concurrent_changes_never_fork_the_history(app_client: TestClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def create(i: int) -> int:
        topic = {**TAX_TOPIC, "id": f"topic_{i}", "examples": [f"example {i}"]}
        return app_client.post("/v1/topics", json=topic).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(create, range(6)))
    assert set(codes) <= {201, 409} and 201 in codes
    history = versions(app_client)
    parents = [v["parent_id"] for v in history]
    assert len(set(parents)) == len(parents)  # a chain: every version builds on a different one
    assert len(history) == 1 + codes.count(201)
    exported = app_client.get("/v1/topics/taxonomy").json()
    assert sum(t["id"].startswith("topic_") for t in exported["topics"]) == codes.count(201)
