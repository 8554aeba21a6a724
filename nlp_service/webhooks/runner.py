"""The delivery loop of ``webhook-delivery``: claim due outbox rows, send them concurrently, record outcomes.

Claiming and its leases are in :mod:`claims`, the retry schedule in :mod:`retry`, writing outcomes in
:mod:`recording`; this module keeps sends in flight and moves work between the event loop and the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.hardening.secretbox import SecretBoxError, load_secret_box
from nlp_service.webhooks.channels import send_claim
from nlp_service.webhooks.claims import Claim, claim_due, release
from nlp_service.webhooks.deliveries import queue_counts
from nlp_service.webhooks.mailer import Mailer, SmtpConfig
from nlp_service.webhooks.recording import record_results
from nlp_service.webhooks.retry import RetryPolicy
from nlp_service.webhooks.safety import TargetPolicy
from nlp_service.webhooks.sender import Sender, SendResult
from nlp_service.worker_metrics import WorkerMetrics

log = logging.getLogger(__name__)
T = TypeVar("T")


class DeliveryRunner:
    """Keeps up to ``webhook_concurrency`` sends in flight: call :meth:`tick` repeatedly, then ``aclose``.

    All database work runs on one dedicated thread (no lock contention within a process, which matters on
    SQLite), and outcomes are recorded in batches: whatever finished while the last batch was being written.
    """

    def __init__(
        self,
        *,
        sessionmaker: sessionmaker[Session],
        settings: Settings,
        worker_id: str,
        sender: Sender | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.metrics = metrics
        self.settings = settings
        self.worker_id = worker_id
        self.policy = RetryPolicy.from_settings(settings)
        self.concurrency = max(1, settings.webhook_concurrency)
        self._min_claim = max(1, self.concurrency // 4)
        self._sender = sender
        self._box = load_secret_box(settings)  # at start: a bad NLP_SECRET_KEYS claims nothing
        smtp = SmtpConfig.from_settings(settings)
        self._mailer = Mailer(smtp) if smtp is not None else None  # e-mail-format subscriptions
        self._tasks: dict[asyncio.Task[None], Claim] = {}
        self._results: list[tuple[Claim, SendResult]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-db")
        self.sent = 0
        # After a claim that came back short (nothing more claimable: queue empty or caps reached), wait for
        # a chunk of sends to finish or a poll interval before asking again, not after every single send.
        self._short_claim_at: float | None = None
        self._finished_since_short = 0
        self._refill = max(1, min(self._min_claim, settings.webhook_max_in_flight_per_subscription // 2))

    @property
    def sender(self) -> Sender:
        if self._sender is None:
            self._sender = Sender(
                timeout_s=self.settings.webhook_timeout_s,
                policy=TargetPolicy.from_settings(self.settings),
                snippet_bytes=self.settings.webhook_response_snippet_bytes,
                max_connections=self.concurrency,
            )
        return self._sender

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def _in_db_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    def _claim(self, limit: int) -> list[Claim]:
        with session_scope(self.sessionmaker) as db_session:
            return claim_due(
                db_session=db_session,
                worker_id=self.worker_id,
                limit=limit,
                lease_s=self.settings.webhook_lease_s,
                per_subscription=self.settings.webhook_max_in_flight_per_subscription,
                max_attempts=len(self.policy.schedule_s),
            )

    def _record_batch(self, batch: list[tuple[Claim, SendResult]], *, retry: bool = True) -> None:
        """One transaction for the batch; after a lost connection, the same batch again at once on a new one
        (recording is idempotent); should it still fail, one transaction per outcome."""
        try:
            with session_scope(self.sessionmaker) as db_session:
                results = record_results(
                    db_session=db_session, outcomes=batch, policy=self.policy, worker_id=self.worker_id
                )
            if self.metrics is not None:
                self.metrics.record_attempts(results)
            return
        except DBAPIError as exc:
            if retry and exc.connection_invalidated:
                log.warning("recording %d delivery results: database connection lost, retrying", len(batch))
                self._record_batch(batch, retry=False)
                return
            failure: Exception = exc
        except Exception as exc:
            failure = exc
        if len(batch) == 1:
            log.error(
                "recording delivery %s failed (its lease will expire)",
                batch[0][0].delivery_id,
                exc_info=failure,
            )
            return
        for item in batch:
            self._record_batch([item])

    async def _flush(self) -> None:
        while self._results:
            batch, self._results = self._results, []
            await self._in_db_thread(self._record_batch, batch)
            self.sent += len(batch)

    def _schedule_flush(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="webhook-record")

    async def _deliver(self, claim: Claim) -> None:
        started = asyncio.get_running_loop().time()
        try:
            secrets = [self._box.open(secret) for secret in claim.secrets]
            result = await send_claim(
                claim,
                secrets,
                sender=self.sender,
                mailer=self._mailer,
                public_url=self.settings.public_url,
            )
        except SecretBoxError as exc:  # another host's key file? a failed attempt, retried, recoverable
            result = SendResult(None, 0.0, error=f"{exc}: set the same NLP_SECRET_KEYS everywhere")
        except Exception as exc:  # a bug or an exhausted resource: a failed attempt, retried on schedule
            log.exception("delivery %s: the send crashed", claim.delivery_id)
            latency_ms = round((asyncio.get_running_loop().time() - started) * 1000, 2)
            result = SendResult(None, latency_ms, error=f"send crashed: {type(exc).__name__}: {exc}"[:500])
        self._results.append((claim, result))
        self._schedule_flush()

    def _done(self, task: asyncio.Task[None]) -> None:
        claim = self._tasks.pop(task, None)
        self._finished_since_short += 1
        if not task.cancelled() and task.exception() is not None and claim is not None:
            log.error("delivery %s crashed", claim.delivery_id, exc_info=task.exception())

    async def tick(self) -> float | None:
        """Top up in-flight sends; returns 0 to be called again at once, None to wait the poll interval."""
        free = self.concurrency - len(self._tasks)
        now = asyncio.get_running_loop().time()
        recently_short = (
            bool(self._tasks)
            and self._short_claim_at is not None
            and now - self._short_claim_at < self.settings.webhook_poll_interval_s
            and self._finished_since_short < self._refill
        )
        if free > 0 and (free >= self._min_claim or not self._tasks) and not recently_short:  # in chunks
            claims = await self._in_db_thread(self._claim, free)
            self._short_claim_at = now if len(claims) < free else None
            self._finished_since_short = 0
            for claim in claims:
                task = asyncio.create_task(self._deliver(claim), name=f"webhook-{claim.delivery_id}")
                self._tasks[task] = claim
                task.add_done_callback(self._done)
        if not self._tasks:
            return 0.0 if self._results else None
        await asyncio.wait(
            list(self._tasks),
            timeout=self.settings.webhook_poll_interval_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        return 0.0

    async def aclose(self, grace_s: float = 10.0) -> None:
        """Let in-flight sends finish for ``grace_s``, record them, give the rest back to the queue."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        unfinished = list(self._tasks.values())
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._flush()
        if unfinished:

            def _release() -> None:
                with session_scope(self.sessionmaker) as db_session:
                    release(db_session=db_session, claims=unfinished)

            await self._in_db_thread(_release)
        if self._sender is not None:
            await self._sender.aclose()
            self._sender = None
        if self._mailer is not None:
            self._mailer.close()
        self._db.shutdown(wait=True)

    async def drain(self, *, timeout_s: float = 60.0) -> None:
        """Run until nothing is pending or in flight (tests, benchmarks)."""

        def busy() -> int:
            with session_scope(self.sessionmaker) as db_session:
                counts = queue_counts(db_session=db_session)
            return counts.get("pending", 0) + counts.get("in_flight", 0)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            hint = await self.tick()
            if hint is None:
                if self._flusher is not None:
                    await asyncio.gather(self._flusher, return_exceptions=True)
                if await self._in_db_thread(busy) == 0:
                    return
                await asyncio.sleep(self.settings.webhook_poll_interval_s)
        raise TimeoutError("deliveries still queued")
