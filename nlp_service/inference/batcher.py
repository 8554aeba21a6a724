"""Dynamic micro-batching: concurrent requests' texts are merged into one batch per model call.

Each submitted text gets its own future, so every caller gets its results back in its own input order,
whatever the arrival pattern. The batch function runs on a single worker thread, never on the event loop.
A bounded queue turns overload into :class:`~nlp_service.errors.Overloaded` (HTTP 429), and the queue is
shared fairly: a request is admitted only while its client holds at most ``max_queue_per_client`` queued
items (a client with nothing queued is always admitted while the queue has room), so one client cannot
fill the queue and refuse everyone else.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from nlp_service.errors import Overloaded

T = TypeVar("T")
R = TypeVar("R")

BatchFn = Callable[[list[T]], Sequence[R]]


@dataclass
class _Item(Generic[T]):
    value: T
    future: asyncio.Future[Any]
    client: str
    enqueued_at: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Observations from one batch, for metrics."""

    size: int
    queue_seconds: list[float]
    compute_seconds: float


class MicroBatcher(Generic[T, R]):
    """Gathers items into batches of at most ``max_batch_size`` or whatever arrived within ``max_wait_ms``."""

    def __init__(
        self,
        fn: BatchFn[T, R],
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 4.0,
        max_queue: int = 4096,
        max_queue_per_client: int | None = None,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1:
            raise ValueError("max_batch_size and max_queue must be >= 1")
        if max_queue_per_client is not None and not 1 <= max_queue_per_client <= max_queue:
            raise ValueError("max_queue_per_client must be between 1 and max_queue")
        self._fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.max_queue_per_client = max_queue_per_client or max_queue
        self._on_batch = on_batch
        self._queue: deque[_Item[T]] = deque()
        self._queued_by_client: Counter[str] = Counter()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._avg_batch_seconds = 0.05

    @property
    def pending(self) -> int:
        return len(self._queue)

    def pending_for(self, client: str) -> int:
        """Items of ``client`` waiting in the queue (not yet taken into a batch)."""
        return self._queued_by_client[client]

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for item in self._queue:
            if not item.future.done():
                item.future.set_exception(RuntimeError("service is shutting down"))
        self._queue.clear()
        self._queued_by_client.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit_many(self, values: Sequence[T], *, client: str = "-") -> list[R]:
        """Queue values (all or none) for ``client`` (an API key id or address) and wait for their results,
        in input order. :class:`Overloaded` when the queue, or the client's share of it, is full."""
        if self._wakeup is None:
            raise RuntimeError("batcher not started")
        self._admit(len(values), client)
        loop = asyncio.get_running_loop()
        items = [_Item(value, loop.create_future(), client) for value in values]
        self._queue.extend(items)
        self._queued_by_client[client] += len(items)
        self._wakeup.set()
        return list(await asyncio.gather(*(item.future for item in items)))

    def _admit(self, n: int, client: str) -> None:
        """Raise :class:`Overloaded` unless ``n`` more items of ``client`` may queue."""
        mine = self._queued_by_client[client]
        if len(self._queue) + n > self.max_queue:
            waiting, reason = len(self._queue), f"inference queue is full ({len(self._queue)} texts waiting)"
        elif mine and mine + n > self.max_queue_per_client:
            waiting = mine
            reason = (
                f"this client's share of the inference queue is full ({mine} of its texts waiting, "
                f"at most {self.max_queue_per_client})"
            )
        else:
            return
        batches_ahead = (waiting + n) / self.max_batch_size
        raise Overloaded(reason, retry_after_s=int(batches_ahead * self._avg_batch_seconds) + 1)

    def _take(self, n: int) -> list[_Item[T]]:
        """Pop the ``n`` oldest items off the queue."""
        batch = [self._queue.popleft() for _ in range(n)]
        for item in batch:
            self._queued_by_client[item.client] -= 1
            if not self._queued_by_client[item.client]:
                del self._queued_by_client[item.client]
        return batch

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            # Give concurrent callers a short window to join this batch.
            deadline = self._queue[0].enqueued_at + self.max_wait
            while len(self._queue) < self.max_batch_size:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=remaining)
                except TimeoutError:
                    break
            batch = self._take(min(self.max_batch_size, len(self._queue)))
            batch = [item for item in batch if not item.future.cancelled()]
            if not batch:
                continue
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._fn, [i.value for i in batch])
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"batch function returned {len(results)} results for {len(batch)} items"
                    )
            except Exception as exc:  # every waiter learns about the failure
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            elapsed = time.perf_counter() - started
            self._avg_batch_seconds = 0.8 * self._avg_batch_seconds + 0.2 * elapsed
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)
            if self._on_batch is not None:
                self._on_batch(BatchStats(len(batch), [started - i.enqueued_at for i in batch], elapsed))
