"""Errors and retries of the client: :class:`ApiError`, :class:`RetryPolicy`, ``Retry-After``, the base both
clients share (headers, when to retry, reading an answer)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from nlp_service.client.calls import Call

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


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:500]}
    return ApiError(response.status_code, body if isinstance(body, dict) else {}, retry_after_s(response))


class Sender:
    """What both clients share: the key header, the retry decision, reading an answer."""

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
