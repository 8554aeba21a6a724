"""Sign and POST one webhook message: SSRF check at send time, no redirects, a timeout, a capped read.

The timeout covers the whole attempt, DNS lookup included; lookups run on the sender's own threads, so a slow
resolver neither outlasts the delivery's lease nor blocks the event loop's default thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from nlp_service import __version__
from nlp_service.hardening.logs import UrlArgsFilter
from nlp_service.webhooks.safety import (
    TargetPolicy,
    UnsafeTarget,
    host_header,
    pinned_url,
    resolve_target_async,
)
from nlp_service.webhooks.signing import sign_headers

USER_AGENT = f"nlp-service-webhooks/{__version__}"
_HTTPX_URLS = UrlArgsFilter(httpx.URL)
logging.getLogger("httpx").addFilter(_HTTPX_URLS)  # its request log names the webhook URL (path, tokens)


@dataclass(frozen=True)
class SendResult:
    """The outcome of one attempt."""

    status_code: int | None
    latency_ms: float
    error: str | None = None
    snippet: str | None = None
    retry_after_s: float | None = None

    @property
    def success(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Sender:
    """Sends signed messages over one shared ``httpx.AsyncClient`` (connection pooling)."""

    def __init__(
        self,
        *,
        timeout_s: float = 15.0,
        policy: TargetPolicy | None = None,
        snippet_bytes: int = 4096,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,  # TLS verification (a context trusting a test CA in tests)
    ) -> None:
        self.timeout_s = timeout_s
        self.policy = policy or TargetPolicy()
        self.snippet_bytes = snippet_bytes
        # Several small pools instead of one big one: httpcore scans every pooled connection on each request,
        # so one pool of N connections costs O(N) per send; shards of <= 8 keep that flat. Each send takes the
        # least busy shard, so requests stuck on a slow endpoint cannot fill one shard while others are free.
        shards = max(1, (max_connections + 7) // 8) if transport is None else 1
        per_shard = max(1, -(-max_connections // shards))
        self._clients = [
            httpx.AsyncClient(
                timeout=httpx.Timeout(timeout_s),
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard),
                transport=transport,
                verify=verify,
            )
            for _ in range(shards)
        ]
        self._busy = [0] * len(self._clients)  # sends in progress per shard
        # A lookup cannot be interrupted: one that hangs keeps its thread past the timeout, so give them
        # their own threads, as many as sends may be in flight.
        self._dns = ThreadPoolExecutor(max_workers=max(1, max_connections), thread_name_prefix="webhook-dns")

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._dns.shutdown(wait=False, cancel_futures=True)

    def _least_busy(self) -> int:
        return min(range(len(self._clients)), key=self._busy.__getitem__)

    async def send(self, *, url: str, msg_id: str, body: bytes, secrets: list[str]) -> SendResult:
        """One attempt: resolve and check the target, sign, POST to the checked address, read <= N bytes."""
        started = time.perf_counter()

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 2)

        try:
            async with asyncio.timeout(self.timeout_s):
                target = await resolve_target_async(url, self.policy, self._dns)
                headers = {
                    "content-type": "application/json",
                    "user-agent": USER_AGENT,
                    "host": host_header(target),
                    **sign_headers(secrets, msg_id, body),
                }
                extensions = {"sni_hostname": target.hostname} if target.url.scheme == "https" else {}
                shard = self._least_busy()
                client = self._clients[shard]
                request = client.build_request(
                    "POST", pinned_url(target), content=body, headers=headers, extensions=extensions
                )
                self._busy[shard] += 1
                try:
                    response = await client.send(request, stream=True)
                    try:
                        snippet = await self._read_snippet(response)
                    finally:
                        await response.aclose()
                finally:
                    self._busy[shard] -= 1
        except UnsafeTarget as exc:
            return SendResult(None, elapsed(), error=f"target refused: {exc}")
        except TimeoutError:
            return SendResult(None, elapsed(), error=f"timed out after {self.timeout_s:g}s")
        except httpx.TimeoutException as exc:
            return SendResult(None, elapsed(), error=f"timed out ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return SendResult(None, elapsed(), error=f"{type(exc).__name__}: {exc}"[:500])
        code = response.status_code
        error = None
        if 300 <= code < 400:
            error = f"redirect ({code}) to {response.headers.get('location', '?')!r} not followed"[:500]
        elif not 200 <= code < 300:
            error = f"HTTP {code}"
        retry_after = parse_retry_after(response.headers.get("retry-after")) if code in (429, 503) else None
        return SendResult(code, elapsed(), error=error, snippet=snippet, retry_after_s=retry_after)

    async def _read_snippet(self, response: httpx.Response) -> str:
        buf = bytearray()
        async for chunk in response.aiter_bytes():
            buf.extend(chunk)
            if len(buf) >= self.snippet_bytes:
                break
        return bytes(buf[: self.snippet_bytes]).decode("utf-8", errors="replace")
