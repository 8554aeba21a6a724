"""``NLP_MAX_TEXTS_PER_REQUEST`` and ``NLP_MAX_TEXT_CHARS`` are the limits: a changed setting changes what
``/v1/classify``, ``/v1/comments`` and ``/v1/search`` accept (422 naming the field) and what ``/info`` says;
``/openapi.json`` documents the defaults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from nlp_service.config import Settings


@pytest.fixture
def small_limits(app_settings: Settings, start_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(update={"max_texts_per_request": 3, "max_text_chars": 20})
    with start_app(settings) as client:
        yield client


def fields(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    return [d["field"] for d in response.json()["detail"]]


def test_changed_settings_change_the_limits(small_limits: TestClient) -> None:
    client = small_limits
    assert client.post("/v1/classify", json={"texts": ["late parcel"] * 3}).status_code == 200
    assert fields(client.post("/v1/classify", json={"texts": ["late parcel"] * 4})) == ["texts"]
    assert client.post("/v1/classify", json={"texts": ["x" * 20]}).status_code == 200
    assert fields(client.post("/v1/classify", json={"texts": ["ok", "x" * 21]})) == ["texts[1]"]

    at = "2026-01-05T09:00:00Z"
    ok = {"id": "c1", "text": "x" * 20, "source": "survey", "created_at": at}
    long = {"id": "c2", "text": "the parcel was late again", "source": "survey", "created_at": at}
    assert fields(client.post("/v1/comments", json={"comments": [ok, long]})) == ["comments[1].text"]
    assert client.get("/v1/comments/c1").status_code == 404  # nothing half-applied
    assert client.post("/v1/comments", json={"comments": [ok]}).status_code == 201

    assert client.post("/v1/search", json={"query": "x" * 20}).status_code == 200
    assert fields(client.post("/v1/search", json={"query": "x" * 21})) == ["query"]

    limits = client.get("/info").json()["limits"]
    assert (limits["max_texts_per_request"], limits["max_text_chars"]) == (3, 20)


def test_openapi_documents_the_defaults(app_client: TestClient) -> None:
    schemas = app_client.get("/openapi.json").json()["components"]["schemas"]
    texts = schemas["ClassifyRequest"]["properties"]["texts"]
    assert texts["maxItems"] == Settings.model_fields["max_texts_per_request"].default == 256
    assert texts["items"]["maxLength"] == Settings.model_fields["max_text_chars"].default == 10_000
    assert app_client.post("/v1/classify", json={"texts": ["x" * 10_001]}).status_code == 422
    assert app_client.post("/v1/classify", json={"texts": ["ok"] * 257}).status_code == 422


@pytest.mark.parametrize("name", ["NLP_MAX_TEXTS_PER_REQUEST", "NLP_MAX_TEXT_CHARS"])
def test_a_limit_below_one_is_refused(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "0")
    with pytest.raises(ValueError):
        Settings()
