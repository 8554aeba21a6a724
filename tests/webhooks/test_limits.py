"""Bounded webhook inputs: URL length, number of subscriptions, filter lists (4xx, never a 500)."""

from __future__ import annotations

from fastapi.testclient import TestClient

URL = "http://127.0.0.1:9999/hook"


def test_overlong_url_is_422_not_a_database_error(client: TestClient) -> None:
    """The column holds 2,048 characters: PostgreSQL refused a longer URL with a 500 (SQLite stored it)."""
    long_url = "http://127.0.0.1:9999/" + "a" * 3000
    resp = client.post("/v1/webhooks", json={"url": long_url})
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["field"] == "url"
    created = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9999/" + "a" * 2000})
    assert created.status_code == 201, created.text
    patched = client.patch(f"/v1/webhooks/{created.json()['id']}", json={"url": long_url})
    assert patched.status_code == 422
    # percent-encoding makes the stored URL longer than the one sent: the stored length is what counts
    encoded = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9999/" + "é" * 700})
    assert encoded.status_code == 422, encoded.text


def test_number_of_subscriptions_is_capped(client: TestClient) -> None:
    state = client.app.state.nlp
    state.settings = state.settings.model_copy(update={"webhook_max_subscriptions": 3})
    ids = [client.post("/v1/webhooks", json={"url": URL}).json()["id"] for _ in range(3)]
    refused = client.post("/v1/webhooks", json={"url": URL})
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "conflict" and "3" in refused.json()["error"]
    assert len(client.get("/v1/webhooks").json()["items"]) == 3
    assert client.delete(f"/v1/webhooks/{ids[0]}").status_code == 204
    assert client.post("/v1/webhooks", json={"url": URL}).status_code == 201


def test_filter_lists_are_bounded(client: TestClient) -> None:
    def status(**body) -> int:
        return client.post("/v1/webhooks", json={"url": URL, **body}).status_code

    assert status(filters={"topics": ["t" * 200], "segments": ["s" * 200]}) == 201
    assert status(filters={"topics": ["t" * 201]}) == 422  # one huge topic id
    assert status(filters={"segments": ["s" * 100_000]}) == 422
    assert status(filters={"topics": [""]}) == 422
    assert status(filters={"topics": [f"t{i}" for i in range(201)]}) == 422  # too many
    assert status(event_types=["alert.created"] * 100) == 422  # a long list of repeats
