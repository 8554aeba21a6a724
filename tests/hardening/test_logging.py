"""Request ids on every response, JSON log lines, no stack traces in responses, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from nlp_service.config import Settings
from nlp_service.errors import install_error_handlers
from nlp_service.hardening.logs import JsonFormatter, RedactingFilter, redact
from nlp_service.hardening.middleware import install_middleware

KEY = "nlp_0123456789abcdef_S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tX"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Lines(list):  # type: ignore[type-arg]
    """Parsed JSON log lines, refreshed by calling it."""

    def __init__(self, stream: io.StringIO) -> None:
        super().__init__()
        self.stream = stream

    def __call__(self) -> Lines:
        self[:] = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return self


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """JSON lines written by the service's formatter and filter, as the CLI configures them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield Lines(stream)
    root.removeHandler(handler)
    root.setLevel(old_level)


def toy_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError(f"database password hunter2 and key {KEY}")

    @app.get("/ok")
    async def ok() -> dict:
        logging.getLogger("nlp_service.test").info("called with Authorization: Bearer %s", KEY)
        return {"ok": True}

    install_middleware(app, Settings())
    return app


def test_request_id_is_echoed_or_generated(app_client: TestClient) -> None:
    given = app_client.get("/health", headers={"x-request-id": "abc-123.x"})
    assert given.headers["x-request-id"] == "abc-123.x"
    for insane in ("x" * 200, "has space", "new\tline"):
        got = app_client.get("/health", headers={"x-request-id": insane}).headers["x-request-id"]
        assert got != insane and len(got) == 32
    for response in (
        app_client.get("/v1/nowhere"),
        app_client.post("/v1/classify", content=b"{", headers={"content-type": "application/json"}),
        app_client.post("/v1/classify", json={"texts": []}),
    ):
        assert response.status_code >= 400 and len(response.headers["x-request-id"]) == 32


def test_unhandled_errors_are_json_without_traceback(log_lines: Lines) -> None:
    with TestClient(toy_app(), raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"x-request-id": "req-boom"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error", "type": "internal_error", "detail": []}
    assert response.headers["x-request-id"] == "req-boom"
    assert "Traceback" not in response.text and "hunter2" not in response.text
    errors = [line for line in log_lines() if line["level"] == "error" and line["request_id"] == "req-boom"]
    assert any("Traceback" in line.get("exc", "") for line in errors)  # the trace stays in the log


def test_access_log_is_one_json_object_per_request(log_lines: Lines) -> None:
    with TestClient(toy_app()) as client:
        client.get("/ok", headers={"x-request-id": "req-ok", "Authorization": f"Bearer {KEY}"})
    access = [line for line in log_lines() if line["logger"] == "nlp_service.access"]
    assert access, log_lines
    line = access[-1]
    assert {
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "path",
        "status",
        "duration_ms",
    } <= set(line)
    assert (line["request_id"], line["method"], line["path"], line["status"]) == ("req-ok", "GET", "/ok", 200)


def test_secrets_never_reach_the_log(log_lines: Lines) -> None:
    with TestClient(toy_app(), raise_server_exceptions=False) as client:
        client.get("/ok", headers={"Authorization": f"Bearer {KEY}"})
        client.get("/boom")
    log = logging.getLogger("nlp_service.test")
    log.warning("headers %s", {"authorization": f"Bearer {KEY}", "x": 1})
    log.warning("webhook secret %s rotated", WHSEC)
    log.info("extra", extra={"token": KEY})
    dump = json.dumps(log_lines())
    assert len(log_lines) >= 5
    assert "S3cr3t" not in dump and WHSEC not in dump
    assert "nlp_0123456789abcdef_[REDACTED]" in dump  # the key id stays, to tell keys apart


@pytest.mark.parametrize(
    "text, leaked",
    [
        (f"Authorization: Bearer {KEY}", "S3cr3t"),
        ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("{'Authorization': 'opaque-token-123'}", "opaque-token-123"),
        (f'"authorization": "{KEY}"', "S3cr3t"),
        (f"url?x=1 {WHSEC}", "MfKQ9r8G"),
        (f"bearer {KEY}", "S3cr3t"),
    ],
)
def test_redact(text: str, leaked: str) -> None:
    assert leaked not in redact(text)


def test_redact_leaves_ordinary_text() -> None:
    assert (
        redact("nlp_service.api answered 200 for /v1/search") == "nlp_service.api answered 200 for /v1/search"
    )
