"""The synchronous client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from nlp_service.anomaly.schemas import AlertOut, AlertPage, DetectResponse
from nlp_service.classify.schemas import ClassifyResponse
from nlp_service.client.calls import (
    JOB_DONE,
    Call,
    alert_call,
    alerts_call,
    classify_call,
    comment_call,
    comments_call,
    detect_call,
    import_call,
    import_source,
    incident_call,
    incidents_call,
    ingest_call,
    job_call,
    json_call,
    search_call,
)
from nlp_service.client.retry import RetryPolicy, Sender
from nlp_service.comments.import_formats import Format
from nlp_service.comments.schemas import CommentOut, IngestResponse
from nlp_service.incidents.schemas import IncidentOut, IncidentPage
from nlp_service.jobs.schemas import JobOut
from nlp_service.search.schemas import SearchResponse

T = TypeVar("T")


class Client(Sender):
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
                    content=call.content,
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

    def list_incidents(self, *, offset: int = 0, limit: int = 50, **filters: Any) -> IncidentPage:
        return self.send(incidents_call(offset, limit, filters))

    def iter_incidents(self, *, page_size: int = 100, **filters: Any) -> Iterator[IncidentOut]:
        """Every incident matching ``filters`` (``status``, ``owner``, ``severity``, ``since``, ``until``)."""
        offset = 0
        while True:
            page = self.send(incidents_call(offset, page_size, filters))
            yield from page.incidents
            offset += len(page.incidents)
            if not page.incidents or offset >= page.total:
                return

    def get_incident(self, incident_id: str) -> IncidentOut:
        return self.send(incident_call(incident_id))

    def acknowledge_incident(self, incident_id: str, note: str | None = None) -> IncidentOut:
        return self.send(incident_call(incident_id, "acknowledge", note))

    def resolve_incident(self, incident_id: str, note: str | None = None) -> IncidentOut:
        return self.send(incident_call(incident_id, "resolve", note))

    def import_comments(
        self, data: bytes | Path, *, format: Format | None = None, filename: str | None = None
    ) -> JobOut:
        """Queue a file of comments (csv, jsonl or parquet; from its suffix if a path) for import: the job."""
        body, fmt, name = import_source(data, format, filename)
        return self.send(import_call(body, fmt, name))

    def get_job(self, job_id: str) -> JobOut:
        return self.send(job_call(job_id))

    def cancel_job(self, job_id: str) -> JobOut:
        return self.send(job_call(job_id, "cancel"))

    def wait_job(self, job_id: str, *, poll_s: float = 1.0, timeout_s: float | None = None) -> JobOut:
        """The job once it ended (succeeded, failed or cancelled); ``TimeoutError`` after ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (job := self.get_job(job_id)).status not in JOB_DONE:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout_s} s")
            time.sleep(poll_s)
        return job

    def health(self) -> dict[str, Any]:
        return self.send(json_call("GET", "/health"))

    def info(self) -> dict[str, Any]:
        return self.send(json_call("GET", "/info"))
