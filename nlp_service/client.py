"""The Python client other services use: sync (:class:`Client`) and async (:class:`AsyncClient`) over httpx.

Results are the service's own response models (``ClassifyResponse``, ``AlertOut``...): one schema, no copy
to drift. 429 and 503 answers are retried after their ``Retry-After`` (capped by ``RetryPolicy.max_wait_s``;
exponential backoff when absent), as are connection errors; other errors raise :class:`ApiError` with the
service's ``error``/``type``/``detail``. Lists that page come as iterators (``iter_alerts``,
``iter_comments``). :func:`verify_webhook` checks a received webhook's signature (``standardwebhooks``).

    with Client("http://127.0.0.1:8000", api_key="...") as nlp:
        result = nlp.classify(["The parcel was late"])
        for alert in nlp.iter_alerts(status=["open"]):
            ...

Every request is built once by the functions of this module (``Call``); the two classes only send them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from nlp_service.anomaly.schemas import AlertOut, AlertPage, DetectResponse
from nlp_service.classify.schemas import ClassifyResponse
from nlp_service.comments.schemas import CommentOut, CommentPage, IngestResponse
from nlp_service.search.schemas import SearchResponse

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 503})


class ApiError(Exception):
    """A non-2xx answer (after retries): the status and the service's error body."""

    def __init__(self, status_code: int, body: Mapping[str, Any], retry_after: float | None = None) -> None:
        self.status_code = status_code
        self.message = str(body.get("error", "")) or f"HTTP {status_code}"
        self.error_type = str(body.get("type", ""))
        self.detail: list[dict[str, Any]] = list(body.get("detail") or [])
        self.retry_after = retry_after
        super().__init__(f"{status_code} {self.error_type}: {self.message}")


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of 429/503 and connection errors: at most ``max_retries``, each wait the ``Retry-After`` (or
    ``backoff_s * 2**n`` with jitter) capped at ``max_wait_s``; a longer ``Retry-After`` is not waited for."""

    max_retries: int = 5
    backoff_s: float = 0.5
    max_wait_s: float = 30.0

    def wait_s(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry ``attempt`` (0-based), or None: give up."""
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_wait_s else None
        return min(self.max_wait_s, self.backoff_s * 2**attempt * (1 + 0.1 * random.random()))


def retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), None if absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    result: Callable[[Any], T]
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _model(cls: type[T]) -> Callable[[Any], T]:
    return TypeAdapter(cls).validate_python


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:500]}
    return ApiError(response.status_code, body if isinstance(body, dict) else {}, retry_after_s(response))


# -- the operations ------------------------------------------------------------------------------------------
def classify_call(texts: Sequence[str], include: Sequence[str] | None) -> Call[ClassifyResponse]:
    body: dict[str, Any] = {"texts": list(texts), **({"include": list(include)} if include else {})}
    return Call("POST", "/v1/classify", _model(ClassifyResponse), json=body)


def ingest_call(comments: Sequence[Mapping[str, Any] | BaseModel]) -> Call[IngestResponse]:
    items = [
        c.model_dump(mode="json", exclude_none=True) if isinstance(c, BaseModel) else dict(c)
        for c in comments
    ]
    return Call("POST", "/v1/comments", _model(IngestResponse), json={"comments": items})


def search_call(
    query: str | None, comment_id: str | None, k: int, mode: str, filters: Mapping[str, Any] | None
) -> Call[SearchResponse]:
    body = _params(
        query=query, comment_id=comment_id, k=k, mode=mode, filters=dict(filters) if filters else None
    )
    return Call("POST", "/v1/search", _model(SearchResponse), json=body)


def alerts_call(offset: int, limit: int, filters: Mapping[str, Any]) -> Call[AlertPage]:
    return Call("GET", "/v1/alerts", _model(AlertPage), params=_params(**filters, offset=offset, limit=limit))


def comments_call(cursor: str | None, limit: int, filters: Mapping[str, Any]) -> Call[CommentPage]:
    return Call(
        "GET", "/v1/comments", _model(CommentPage), params=_params(**filters, cursor=cursor, limit=limit)
    )


def alert_call(alert_id: str, action: str | None = None, note: str | None = None) -> Call[AlertOut]:
    if action is None:
        return Call("GET", f"/v1/alerts/{alert_id}", _model(AlertOut))
    return Call("POST", f"/v1/alerts/{alert_id}/{action}", _model(AlertOut), json=_params(note=note))


def detect_call(at: str | None, lookback_s: int | None) -> Call[DetectResponse]:
    return Call("POST", "/v1/detect", _model(DetectResponse), json=_params(at=at, lookback_s=lookback_s))


def comment_call(comment_id: str) -> Call[CommentOut]:
    return Call("GET", f"/v1/comments/{comment_id}", _model(CommentOut))


def json_call(method: str, path: str) -> Call[dict[str, Any]]:
    return Call(method, path, _model(dict[str, Any]))


# -- the clients ---------------------------------------------------------------------------------------------
class _Base:
    def __init__(
        self, api_key: str | None, retry: RetryPolicy | None, on_retry: Callable[[int, float], None] | None
    ) -> None:
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry  # called with (status or 0 for a connection error, seconds waited)

    def _next_wait(self, attempt: int, response: httpx.Response | None) -> float | None:
        """None: the answer stands (or the error is raised); else seconds to wait before retrying."""
        if response is not None and response.status_code not in RETRY_STATUSES:
            return None
        wait = self.retry.wait_s(attempt, retry_after_s(response) if response is not None else None)
        if wait is not None and self.on_retry is not None:
            self.on_retry(response.status_code if response is not None else 0, wait)
        return wait

    @staticmethod
    def _result(call: Call[T], response: httpx.Response) -> T:
        if response.status_code >= 400:
            raise _error(response)
        return call.result(response.json())


class Client(_Base):
    """Synchronous client. ``http`` may be a ready ``httpx.Client`` (e.g. FastAPI's TestClient)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[int, float], None] | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(api_key, retry, on_retry)
        self._owned = http is None
        self.http = http or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self.http.close()

    def send(self, call: Call[T]) -> T:
        """Send ``call``, retrying 429/503 and connection errors by the retry policy."""
        attempt = 0
        while True:
            try:
                response = self.http.request(
                    call.method,
                    call.path,
                    json=call.json,
                    params=call.params,
                    headers={**self.headers, **call.headers},
                )
            except httpx.TransportError:
                wait = self._next_wait(attempt, None)
                if wait is None:
                    raise
            else:
                wait = self._next_wait(attempt, response)
                if wait is None:
                    return self._result(call, response)
            time.sleep(wait)
            attempt += 1

    def classify(self, texts: Sequence[str], include: Sequence[str] | None = None) -> ClassifyResponse:
        return self.send(classify_call(texts, include))

    def ingest(self, comments: Sequence[Mapping[str, Any] | BaseModel]) -> IngestResponse:
        """Store 1-1,000 comments (idempotent on their ids: a retried batch is safe)."""
        return self.send(ingest_call(comments))

    def get_comment(self, comment_id: str) -> CommentOut:
        return self.send(comment_call(comment_id))

    def iter_comments(self, *, page_size: int = 200, **filters: Any) -> Iterator[CommentOut]:
        """Every comment matching ``filters`` (the query parameters of ``GET /v1/comments``), page by page."""
        cursor: str | None = None
        while True:
            page = self.send(comments_call(cursor, page_size, filters))
            yield from page.comments
            if not (cursor := page.next_cursor):
                return

    def search(
        self,
        query: str | None = None,
        *,
        comment_id: str | None = None,
        k: int = 10,
        mode: str = "vector",
        filters: Mapping[str, Any] | None = None,
    ) -> SearchResponse:
        return self.send(search_call(query, comment_id, k, mode, filters))

    def list_alerts(self, *, offset: int = 0, limit: int = 50, **filters: Any) -> AlertPage:
        return self.send(alerts_call(offset, limit, filters))

    def iter_alerts(self, *, page_size: int = 100, **filters: Any) -> Iterator[AlertOut]:
        """Every alert matching ``filters`` (``status``, ``topic``, ``kind``, ``severity``, ``since``...)."""
        offset = 0
        while True:
            page = self.send(alerts_call(offset, page_size, filters))
            yield from page.alerts
            offset += len(page.alerts)
            if not page.alerts or offset >= page.total:
                return

    def get_alert(self, alert_id: str) -> AlertOut:
        return self.send(alert_call(alert_id))

    def acknowledge_alert(self, alert_id: str, note: str | None = None) -> AlertOut:
        return self.send(alert_call(alert_id, "acknowledge", note))

    def resolve_alert(self, alert_id: str, note: str | None = None) -> AlertOut:
        return self.send(alert_call(alert_id, "resolve", note))

    def detect(self, *, at: str | None = None, lookback_s: int | None = None) -> DetectResponse:
        return self.send(detect_call(at, lookback_s))

    def health(self) -> dict[str, Any]:
        return self.send(json_call("GET", "/health"))

    def info(self) -> dict[str, Any]:
        return self.send(json_call("GET", "/info"))


class AsyncClient(_Base):
    """Asynchronous client (the same methods as :class:`Client`, awaited; iterators are async)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[int, float], None] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(api_key, retry, on_retry)
        self._owned = http is None
        self.http = http or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self.http.aclose()

    async def send(self, call: Call[T]) -> T:
        """Send ``call``, retrying 429/503 and connection errors by the retry policy."""
        attempt = 0
        while True:
            try:
                response = await self.http.request(
                    call.method,
                    call.path,
                    json=call.json,
                    params=call.params,
                    headers={**self.headers, **call.headers},
                )
            except httpx.TransportError:
                wait = self._next_wait(attempt, None)
                if wait is None:
                    raise
            else:
                wait = self._next_wait(attempt, response)
                if wait is None:
                    return self._result(call, response)
            await asyncio.sleep(wait)
            attempt += 1

    async def classify(self, texts: Sequence[str], include: Sequence[str] | None = None) -> ClassifyResponse:
        return await self.send(classify_call(texts, include))

    async def ingest(self, comments: Sequence[Mapping[str, Any] | BaseModel]) -> IngestResponse:
        return await self.send(ingest_call(comments))

    async def get_comment(self, comment_id: str) -> CommentOut:
        return await self.send(comment_call(comment_id))

    async def iter_comments(self, *, page_size: int = 200, **filters: Any) -> AsyncIterator[CommentOut]:
        cursor: str | None = None
        while True:
            page = await self.send(comments_call(cursor, page_size, filters))
            for comment in page.comments:
                yield comment
            if not (cursor := page.next_cursor):
                return

    async def search(
        self,
        query: str | None = None,
        *,
        comment_id: str | None = None,
        k: int = 10,
        mode: str = "vector",
        filters: Mapping[str, Any] | None = None,
    ) -> SearchResponse:
        return await self.send(search_call(query, comment_id, k, mode, filters))

    async def list_alerts(self, *, offset: int = 0, limit: int = 50, **filters: Any) -> AlertPage:
        return await self.send(alerts_call(offset, limit, filters))

    async def iter_alerts(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[AlertOut]:
        offset = 0
        while True:
            page = await self.send(alerts_call(offset, page_size, filters))
            for alert in page.alerts:
                yield alert
            offset += len(page.alerts)
            if not page.alerts or offset >= page.total:
                return

    async def get_alert(self, alert_id: str) -> AlertOut:
        return await self.send(alert_call(alert_id))

    async def acknowledge_alert(self, alert_id: str, note: str | None = None) -> AlertOut:
        return await self.send(alert_call(alert_id, "acknowledge", note))

    async def resolve_alert(self, alert_id: str, note: str | None = None) -> AlertOut:
        return await self.send(alert_call(alert_id, "resolve", note))

    async def detect(self, *, at: str | None = None, lookback_s: int | None = None) -> DetectResponse:
        return await self.send(detect_call(at, lookback_s))

    async def health(self) -> dict[str, Any]:
        return await self.send(json_call("GET", "/health"))

    async def info(self) -> dict[str, Any]:
        return await self.send(json_call("GET", "/info"))


# -- webhooks ------------------------------------------------------------------------------------------------
def verify_webhook(
    body: bytes | str, headers: Mapping[str, str], secret: str | Sequence[str]
) -> dict[str, Any]:
    """The verified event (``{"id", "type", "timestamp", "version", "data"}``) of a received webhook request.

    ``secret`` is the subscription's ``whsec_...`` secret (or several, during a rotation). Raises
    ``standardwebhooks.WebhookVerificationError`` on a bad signature or a timestamp older than 5 minutes.
    Needs the ``standardwebhooks`` package (``pip install 'nlp-service[client]'``).
    """
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    lower = {k.lower(): v for k, v in headers.items()}
    payload = body.decode() if isinstance(body, bytes) else body
    secrets = [secret] if isinstance(secret, str) else list(secret)
    error: WebhookVerificationError | None = None
    for candidate in secrets:
        try:
            event: dict[str, Any] = Webhook(candidate).verify(payload, lower)
            return event
        except WebhookVerificationError as exc:
            error = exc
    raise error or WebhookVerificationError("no secret given")
