"""Pure ASGI middlewares: request context (id, access log, last-resort 500), body-size and time limits.

Order, outermost first: request context -> CORS (if configured) -> body limit -> timeout -> the app.
Every response, including errors produced here, carries ``x-request-id``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nlp_service.config import Settings
from nlp_service.errors import error_body
from nlp_service.hardening.logs import REQUEST_ID

log = logging.getLogger("nlp_service.access")
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
# File uploads: limited by NLP_JOB_UPLOAD_MAX_BYTES instead of NLP_MAX_BODY_BYTES (their views stream them)
UPLOAD_PATHS = ("/v1/comments/import",)


async def send_error(
    send: Send, status: int, message: str, error_type: str, headers: dict[str, str] | None = None
) -> None:
    """Send a complete JSON error response (the errors module's shape)."""
    body = json.dumps(error_body(message, error_type)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def request_id_from(scope: Scope) -> str:
    """The client's ``x-request-id`` if it is short and plain, else a new one."""
    incoming = Headers(scope=scope).get("x-request-id", "")
    return incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


RequestObserver = Callable[[Scope, int, float], None]


class RequestContextMiddleware:
    """Request id (context variable + response header), one access-log line per request, and a JSON 500
    for anything unhandled (no stack trace leaves the process)."""

    def __init__(self, app: ASGIApp, on_complete: RequestObserver | None = None) -> None:
        self.app = app
        self.on_complete = on_complete

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        token = REQUEST_ID.set(request_id)
        status, started = 500, False
        t0 = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error")
            if not started:
                await send_error(send_with_id, 500, "internal server error", "internal_error")
        finally:
            seconds = time.perf_counter() - t0
            if self.on_complete is not None:
                self.on_complete(scope, status, seconds)
            extra: dict[str, Any] = {
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            }
            key_id = scope.get("state", {}).get("key_id")
            if key_id:
                extra["key_id"] = key_id
            log.log(logging.ERROR if status >= 500 else logging.INFO, "request", extra=extra)
            REQUEST_ID.reset(token)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: at once from ``Content-Length``, else while the body streams in.

    ``path_limits`` gives some paths their own limit (the bulk-import upload: ``NLP_JOB_UPLOAD_MAX_BYTES``).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})

    async def _too_large(self, send: Send, max_bytes: int) -> None:
        message = f"request body exceeds {max_bytes} bytes"
        await send_error(send, 413, message, "payload_too_large", {"connection": "close"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        max_bytes = self.max_bytes
        if scope["type"] == "http":
            max_bytes = self.path_limits.get(scope["path"], max_bytes)
        if scope["type"] != "http" or max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._too_large(send, max_bytes)
            return
        received, tripped, started = 0, False, False

        async def limited_receive() -> Message:
            nonlocal received, tripped
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    tripped = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped and not started:
                return  # the app's reaction to the aborted read is replaced by the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not tripped:
                raise
        if tripped and not started:
            await self._too_large(send, max_bytes)


class TimeoutMiddleware:
    """503 (JSON, ``Retry-After``) when the app has not started answering within ``seconds``. A file upload
    (``UPLOAD_PATHS``) has ``seconds`` from each piece of its body received instead: one that keeps sending
    is not cut off however slow the link, one that stalls is, and its view has ``seconds`` after the last."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def receive_extending() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                deadline.reschedule(asyncio.get_running_loop().time() + self.seconds)
            return message

        deadline = asyncio.timeout(self.seconds)
        upload = scope.get("path") in UPLOAD_PATHS
        try:
            async with deadline:
                await self.app(scope, receive_extending if upload else receive, send_tracking)
        except TimeoutError:
            if not deadline.expired():
                raise
            log.warning("request timed out after %.1fs", self.seconds)
            if not started:
                message = f"request did not complete within {self.seconds:g}s"
                await send_error(send, 503, message, "timeout", {"retry-after": "5"})


def install_middleware(app: Any, settings: Settings, on_complete: RequestObserver | None = None) -> None:
    """Add the hardening middlewares to ``app`` (call last in ``create_app``: they wrap everything).

    ``on_complete(scope, status, seconds)`` is called once per HTTP request (metrics).
    """
    app.add_middleware(TimeoutMiddleware, seconds=settings.request_timeout_s)
    uploads = {path: settings.job_upload_max_bytes for path in UPLOAD_PATHS}
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, path_limits=uploads)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id", "retry-after"],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, on_complete=on_complete)
