"""Post a JSONL file of comments to ``POST /v1/comments`` in batches through ``nlp_service.client`` (retries
on 429/503 honouring Retry-After, and on connection errors).

Several batches may be in flight at once (``concurrency``): ingest is idempotent on the comment id and the
order of batches does not matter, so concurrent posting is safe and keeps the server's encoder busy.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from nlp_service.client import ApiError, Client, RetryPolicy
from nlp_service.comments.schemas import IngestResponse


class LoadError(RuntimeError):
    """The service refused a batch (a 4xx other than 429) or kept failing."""


@dataclass
class LoadResult:
    sent: int = 0
    created: int = 0
    existing: int = 0
    retries: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_retry(self) -> None:
        with self._lock:
            self.retries += 1


def read_batches(path: Path, size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                batch.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise LoadError(f"{path}:{n}: invalid JSON: {exc.msg}") from exc
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def post_batch(api: Client, batch: list[dict[str, Any]]) -> IngestResponse:
    """POST one batch through the client (429/503 and connection errors retried, honouring Retry-After)."""
    try:
        return api.ingest(batch)
    except ApiError as exc:
        raise LoadError(f"HTTP {exc.status_code}: {exc.message} {exc.detail or ''}".strip()) from exc
    except httpx.TransportError as exc:
        raise LoadError(f"service unreachable: {exc}") from exc


def load(
    path: Path,
    url: str,
    *,
    batch_size: int = 100,
    concurrency: int = 4,
    api_key: str | None = None,
    timeout_s: float = 120.0,
    progress: bool = True,
    client: httpx.Client | None = None,
) -> LoadResult:
    """Send every comment of ``path`` to the service at ``url`` (or through ``client``); returns counts.

    Up to ``concurrency`` batches are in flight at once. The first batch that fails for good stops the load
    (batches already sent stay stored: posting the file again skips them) and raises ``LoadError``.
    """
    if concurrency < 1:
        raise LoadError(f"concurrency must be >= 1, got {concurrency}")
    if not 1 <= batch_size <= 1000:
        raise LoadError(f"batch size must be 1-1000 (the API's limit), got {batch_size}")
    total = sum(1 for line in path.open(encoding="utf-8") if line.strip())
    result = LoadResult()
    started = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per batch would drown the bar
        bar = tqdm(total=total, unit="comment", desc="loading")
    api = Client(
        url or "http://127.0.0.1:8000",
        api_key=api_key,
        timeout_s=timeout_s,
        retry=RetryPolicy(max_retries=7, max_wait_s=60.0),
        on_retry=lambda status, wait: result.add_retry(),
        http=client,
    )
    in_flight: dict[Future[IngestResponse], int] = {}

    def collect(done: set[Future[IngestResponse]]) -> None:
        for future in done:
            size = in_flight.pop(future)
            body = future.result()  # re-raises the batch's LoadError
            result.sent += size
            result.created += body.created
            result.existing += body.existing
            if bar is not None:
                bar.update(size)

    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="demo-load") as pool:
            try:
                for batch in read_batches(path, batch_size):
                    if len(in_flight) >= concurrency:
                        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                        collect(done)
                    in_flight[pool.submit(post_batch, api, batch)] = len(batch)
                while in_flight:
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    collect(done)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
    finally:
        api.close()  # closes only a connection pool it opened
        if bar is not None:
            bar.close()
        result.seconds = time.perf_counter() - started
    return result
