"""Body-size limit (413), rate limits (429 + Retry-After), request timeouts (503) and CORS."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from nlp_service.config import Settings
from nlp_service.errors import install_error_handlers
from nlp_service.hardening.middleware import UPLOAD_PATHS, TimeoutMiddleware, install_middleware
from nlp_service.hardening.ratelimit import RateLimiter
from tests.auth.conftest import make_key

MIB = 1024 * 1024


def two_mb_ingest() -> bytes:
    comments = [
        {"id": f"c{i}", "text": "the parcel arrived late " * 40, "created_at": "2026-01-01T00:00:00Z"}
        for i in range(2200)
    ]
    body = json.dumps({"comments": comments}).encode()
    assert 2 * MIB <= len(body) < 3 * MIB
    return body


@pytest.fixture
def small_body_settings(app_settings: Settings) -> Settings:
    return app_settings.model_copy(update={"max_body_bytes": MIB})


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit_gets_413(small_body_settings: Settings, start_app, streamed: bool) -> None:  # type: ignore[no-untyped-def]
    body = two_mb_ingest()
    content = (body[i : i + 65536] for i in range(0, len(body), 65536)) if streamed else body
    with start_app(small_body_settings) as client:
        response = client.post("/v1/comments", content=content, headers={"content-type": "application/json"})
        assert response.status_code == 413, response.text[:200]
        assert response.json()["type"] == "payload_too_large"
        assert response.headers["x-request-id"]
        assert client.post("/v1/classify", json={"texts": ["still fine"]}).status_code == 200


def test_rate_limit_answers_429_with_retry_after(app_settings: Settings, start_app) -> None:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(update={"rate_limit_per_s": 0.5, "rate_limit_burst": 2})
    with start_app(settings) as client:
        statuses = [client.post("/v1/classify", json={"texts": ["hi"]}).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = client.post("/v1/classify", json={"texts": ["hi"]})
        assert limited.json()["type"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        assert client.get("/health").status_code == 200  # operational endpoints are not limited


def test_rate_limit_buckets_are_per_key(app_settings: Settings, start_app, database_url: str) -> None:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(update={"rate_limit_per_s": 0.1, "rate_limit_burst": 1})
    a, b = make_key(database_url, ["classify"]), make_key(database_url, ["classify"])
    with start_app(settings) as client:

        def post(key: str) -> int:
            headers = {"Authorization": f"Bearer {key}"}
            return client.post("/v1/classify", json={"texts": ["hi"]}, headers=headers).status_code

        assert [post(a), post(a), post(b)] == [200, 429, 200]


def test_token_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 3, clock=lambda: now[0], max_buckets=2)
    assert [limiter.try_acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.try_acquire("k") == 0.0
    limiter.try_acquire("other")
    limiter.try_acquire("third")  # evicts the least recently seen bucket ("k"), forgiving it
    assert limiter.try_acquire("k") == 0.0
    assert RateLimiter(0, 1).try_acquire("k") == 0.0  # rate 0 = off


def test_looking_at_a_bucket_takes_nothing() -> None:
    now = [0.0]
    limiter = RateLimiter(1.0, 2, clock=lambda: now[0])
    assert limiter.try_acquire("k", take=False) == 0.0 and "k" not in limiter._buckets  # unseen: not tracked
    assert [limiter.try_acquire("k") for _ in range(2)] == [0.0, 0.0]
    assert limiter.try_acquire("k", take=False) == pytest.approx(1.0)
    now[0] += 1.0
    assert [limiter.try_acquire("k", take=False) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("k") == 0.0 and limiter.try_acquire("k") == pytest.approx(1.0)


def toy_app(**overrides: object) -> FastAPI:
    settings = Settings(**{"request_timeout_s": 0.2, **overrides})  # type: ignore[arg-type]
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/slow")
    async def slow() -> dict:
        await asyncio.sleep(2)
        return {"ok": True}

    @app.get("/fast")
    async def fast() -> dict:
        return {"ok": True}

    install_middleware(app, settings)
    return app


def test_slow_requests_time_out_with_503() -> None:
    with TestClient(toy_app()) as client:
        response = client.get("/slow")
        assert response.status_code == 503
        assert response.json()["type"] == "timeout"
        assert response.headers["retry-after"] and response.headers["x-request-id"]
        assert client.get("/fast").status_code == 200


def test_cors_is_off_unless_configured() -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    with TestClient(toy_app()) as client:
        assert "access-control-allow-origin" not in client.get("/fast", headers=preflight).headers
    with TestClient(toy_app(cors_origins="https://app.example")) as client:
        response = client.options("/fast", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        other = client.get("/fast", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def _upload(path: str, chunks: int, gap_s: float, handler_s: float = 0.0) -> int:
    """The status of a request to ``path`` whose body arrives in ``chunks`` pieces ``gap_s`` apart, through
    the timeout middleware (0.2 s) around an app that reads the whole body, then works ``handler_s``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await asyncio.sleep(handler_s)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        nonlocal sent
        await asyncio.sleep(gap_s)
        sent += 1
        return {"type": "http.request", "body": b"x" * 1024, "more_body": sent < chunks}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    sent, statuses = 0, []
    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    asyncio.run(TimeoutMiddleware(app, seconds=0.2)(scope, receive, send))  # type: ignore[arg-type]
    return statuses[0]


def test_an_upload_that_keeps_sending_is_not_cut_off_by_the_request_timeout() -> None:
    """A file upload (``UPLOAD_PATHS``) gets the request timeout between its chunks and after its last one,
    not over the whole upload: a large file over a slow link is not lost at 60 s."""
    (upload,) = UPLOAD_PATHS
    assert _upload(upload, chunks=8, gap_s=0.05) == 200  # 0.4 s in all, never 0.2 s without data
    assert _upload(upload, chunks=2, gap_s=0.4) == 503  # stalled: nothing for 0.4 s
    assert _upload(upload, chunks=2, gap_s=0.05, handler_s=0.4) == 503  # the view still has 0.2 s
    assert _upload("/v1/comments", chunks=8, gap_s=0.05) == 503  # other requests: bounded as a whole
