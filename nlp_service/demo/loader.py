"""Post a JSONL file of comments to ``POST /v1/comments`` in batches, with retries on 429/503.

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

RETRY_STATUSES = {429, 502, 503, 504}


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


def post_batch(
    client: httpx.Client, batch: list[dict[str, Any]], *, max_attempts: int = 8, result: LoadResult
) -> dict[str, Any]:
    """POST one batch; wait and retry on 429/5xx (honouring Retry-After) and connection errors."""
    delay = 0.5
    for attempt in range(1, max_attempts + 1):
        try:
            response = client.post("/v1/comments", json={"comments": batch})
        except httpx.TransportError as exc:
            if attempt == max_attempts:
                raise LoadError(f"service unreachable: {exc}") from exc
        else:
            if response.status_code in (200, 201):
                return response.json()
            if response.status_code not in RETRY_STATUSES or attempt == max_attempts:
                raise LoadError(f"HTTP {response.status_code}: {response.text[:500]}")
            retry_after = response.headers.get("Retry-After")
            if retry_after and retry_after.replace(".", "", 1).isdigit():
                delay = max(delay, float(retry_after))
        result.add_retry()
        time.sleep(delay)
        delay = min(delay * 2, 30.0)
    raise LoadError("unreachable")  # pragma: no cover


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
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    result = LoadResult()
    started = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per batch would drown the bar
        bar = tqdm(total=total, unit="comment", desc="loading")
    http = client or httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)
    in_flight: dict[Future[dict[str, Any]], int] = {}

    def collect(done: set[Future[dict[str, Any]]]) -> None:
        for future in done:
            size = in_flight.pop(future)
            body = future.result()  # re-raises the batch's LoadError
            result.sent += size
            result.created += int(body.get("created", 0))
            result.existing += int(body.get("existing", 0))
            if bar is not None:
                bar.update(size)

    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="demo-load") as pool:
            try:
                for batch in read_batches(path, batch_size):
                    if len(in_flight) >= concurrency:
                        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                        collect(done)
                    in_flight[pool.submit(post_batch, http, batch, result=result)] = len(batch)
                while in_flight:
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    collect(done)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
    finally:
        if client is None:
            http.close()
        if bar is not None:
            bar.close()
        result.seconds = time.perf_counter() - started
    return result
