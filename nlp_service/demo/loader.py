"""Post a JSONL file of comments to ``POST /v1/comments`` in batches, with retries on 429/503."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
        result.retries += 1
        time.sleep(delay)
        delay = min(delay * 2, 30.0)
    raise LoadError("unreachable")  # pragma: no cover


def load(
    path: Path,
    url: str,
    *,
    batch_size: int = 100,
    api_key: str | None = None,
    timeout_s: float = 120.0,
    progress: bool = True,
    client: httpx.Client | None = None,
) -> LoadResult:
    """Send every comment of ``path`` to the service at ``url`` (or through ``client``); returns counts."""
    total = sum(1 for line in path.open(encoding="utf-8") if line.strip())
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    result = LoadResult()
    started = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="comment", desc="loading")
    http = client or httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)
    try:
        for batch in read_batches(path, batch_size):
            body = post_batch(http, batch, result=result)
            result.sent += len(batch)
            result.created += int(body.get("created", 0))
            result.existing += int(body.get("existing", 0))
            if bar is not None:
                bar.update(len(batch))
    finally:
        if client is None:
            http.close()
        if bar is not None:
            bar.close()
        result.seconds = time.perf_counter() - started
    return result
