"""Every bad input to /v1/classify gets a 4xx JSON error naming the field (and index); never a 500."""

from __future__ import annotations

import json

import pytest

from nlp_service.inference.limits import DEFAULT_MAX_TEXT_CHARS as MAX_TEXT_CHARS
from nlp_service.inference.limits import DEFAULT_MAX_TEXTS as MAX_TEXTS

JSON = {"content-type": "application/json"}


def _post(client, body, headers=JSON):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/v1/classify", content=data, headers=headers)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"texts": []}, 422, "texts"),
        ({"texts": ["ok"] * (MAX_TEXTS + 1)}, 422, "texts"),
        ({"texts": ["fine", 3]}, 422, "texts[1]"),
        ({"texts": ["fine", None]}, 422, "texts[1]"),
        ({"texts": ["fine", ""]}, 422, "texts[1]"),
        ({"texts": ["fine", "ok", "   \n\t"]}, 422, "texts[2]"),
        ({"texts": ["x" * (MAX_TEXT_CHARS + 1)]}, 422, "texts[0]"),
        ({"texts": ["fine"], "include": ["sentiment", "horoscope"]}, 422, "include[1]"),
        ({"texts": "not a list"}, 422, "texts"),
        ({}, 422, "texts"),
        ({"texts": ["fine"], "unknown": 1}, 422, "unknown"),
        ([1, 2], 422, "body"),
    ],
)
def test_bad_input_names_field_and_index(cold_client, body, status, field) -> None:
    response = _post(cold_client, body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["type"] == "validation_error"
    assert field in [d["field"] for d in payload["detail"]], payload


def test_invalid_json_is_400(cold_client) -> None:
    response = _post(cold_client, '{"texts": ["a",')
    assert response.status_code == 400
    assert response.json()["type"] == "invalid_json"
    assert response.json()["detail"][0]["field"] == "body"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(cold_client, content_type) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = cold_client.post("/v1/classify", content=b'{"texts": ["a"]}', headers=headers)
    assert response.status_code == 415
    assert response.json()["type"] == "unsupported_media_type"


def test_max_length_text_is_accepted_by_validation(cold_client) -> None:
    # Valid input reaches the engine, which is not loaded here: 503 with Retry-After, not a 4xx.
    response = _post(cold_client, {"texts": ["x" * MAX_TEXT_CHARS] * 2})
    assert response.status_code == 503
    assert response.headers["retry-after"]


def test_health_is_503_when_models_failed(cold_client) -> None:
    response = cold_client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] in {"loading", "failed"}
