"""The client honours ``Retry-After`` on 429/503, against a real local HTTP server that throttles first."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nlp_service.client import ApiError, AsyncClient, Client, RetryPolicy


class Throttling:
    """Answers ``status`` with ``Retry-After: retry_after`` to the first ``refusals`` requests, then 200."""

    def __init__(self, refusals: int, retry_after: str, status: int = 429) -> None:
        self.refusals, self.retry_after, self.status = refusals, retry_after, status
        self.arrivals: list[float] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                owner.arrivals.append(time.monotonic())
                if len(owner.arrivals) <= owner.refusals:
                    body = json.dumps({"error": "rate limit", "type": "rate_limited", "detail": []}).encode()
                    self.send_response(owner.status)
                    self.send_header("Retry-After", owner.retry_after)
                else:
                    body = json.dumps({"status": "ok"}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def throttling() -> Iterator[type[Throttling]]:
    servers: list[Throttling] = []

    def make(*args: object, **kwargs: object) -> Throttling:
        server = Throttling(*args, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in servers:
        server.close()


def test_sync_client_waits_retry_after_then_succeeds(throttling) -> None:  # type: ignore[no-untyped-def]
    server = throttling(2, "1")
    retries: list[tuple[int, float]] = []
    with Client(server.url, on_retry=lambda status, wait: retries.append((status, wait))) as client:
        assert client.health() == {"status": "ok"}
    assert len(server.arrivals) == 3 and retries == [(429, 1.0), (429, 1.0)]
    assert all(gap >= 0.95 for gap in server.gaps()), server.gaps()  # waited as told, not the 0.5 s backoff


def test_async_client_waits_retry_after_on_503(throttling) -> None:  # type: ignore[no-untyped-def]
    server = throttling(1, "1", status=503)

    async def call() -> dict:
        async with AsyncClient(server.url) as client:
            return await client.health()

    assert asyncio.run(call()) == {"status": "ok"}
    assert len(server.arrivals) == 2 and server.gaps()[0] >= 0.95


def test_a_retry_after_beyond_the_cap_is_not_waited_for(throttling) -> None:  # type: ignore[no-untyped-def]
    server = throttling(5, "120")
    started = time.monotonic()
    with Client(server.url, retry=RetryPolicy(max_wait_s=5)) as client, pytest.raises(ApiError) as caught:
        client.health()
    assert time.monotonic() - started < 2 and len(server.arrivals) == 1
    assert (caught.value.status_code, caught.value.retry_after, caught.value.error_type) == (
        429,
        120,
        "rate_limited",
    )


def test_retries_are_capped(throttling) -> None:  # type: ignore[no-untyped-def]
    server = throttling(10, "0")
    with Client(server.url, retry=RetryPolicy(max_retries=2)) as client, pytest.raises(ApiError):
        client.health()
    assert len(server.arrivals) == 3  # the first try and two retries
