"""The delivery loop: claim due outbox rows with a lease, send them concurrently, record each outcome.

Claiming stamps a claim token and a lease on due rows, re-checking that they are still due, and counts the
attempt: on PostgreSQL the rows are first selected ``FOR UPDATE SKIP LOCKED`` so several workers share the
queue; on SQLite it is one atomic ``UPDATE ... WHERE id IN (due rows) AND <still due>``. Claims are fair:
subscriptions take turns and each has a cap on sends in flight, so one slow endpoint cannot take every slot.
A worker that dies leaves its rows ``in_flight`` until the lease expires, then they are claimed again (same
event id, so receivers deduplicate) until the schedule's attempts are used up. Results are written only while
the claim is still ours (the token matches); attempts are always logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.db import UTCDateTime, session_scope
from nlp_service.hardening.secretbox import SecretBoxError, load_secret_box
from nlp_service.webhooks import service
from nlp_service.webhooks.safety import TargetPolicy
from nlp_service.webhooks.sender import Sender, SendResult
from nlp_service.webhooks.tables import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    utcnow,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again: ``schedule_s[i]`` is the delay before attempt ``i + 1`` of a round."""

    schedule_s: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    jitter: float = 0.1
    max_retry_after_s: float = 86400.0
    disable_after_s: float = 5 * 86400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            schedule_s=tuple(settings.webhook_retry_schedule_s) or (0,),
            jitter=settings.webhook_retry_jitter,
            max_retry_after_s=settings.webhook_max_retry_after_s,
            disable_after_s=settings.webhook_disable_after_s,
        )

    def next_delay(self, attempts_in_round: int, retry_after_s: float | None = None) -> float | None:
        """Seconds until the next attempt after ``attempts_in_round`` failures, or None when none is left."""
        if attempts_in_round >= len(self.schedule_s):
            return None
        delay = self.schedule_s[attempts_in_round]
        delay *= 1 + random.uniform(-self.jitter, self.jitter)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_retry_after_s))
        return max(0.0, delay)


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds, with everything needed to send it."""

    delivery_id: str
    token: str
    subscription_id: str
    event_id: str
    url: str
    attempt_number: int
    body: bytes = field(repr=False)
    secrets: tuple[str, ...] = field(repr=False)  # as stored (sealed): opened just before signing


def _due(now: datetime):  # type: ignore[no-untyped-def]
    return or_(
        and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now),
        and_(WebhookDelivery.status == "in_flight", WebhookDelivery.claimed_until <= now),
    )


def _bury_exhausted(db_session: Session, now: datetime, max_attempts: int) -> None:
    """Expired claims with no attempt left are dead: their worker stopped mid-send each time."""
    db_session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.status == "in_flight",
            WebhookDelivery.claimed_until <= now,
            WebhookDelivery.attempts - WebhookDelivery.round_start >= max_attempts,
        )
        .values(
            status="dead",
            claimed_by=None,
            claim_token=None,
            claimed_until=None,
            last_error="the worker stopped before recording a result (lease expired); no attempts left",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _fair_candidates(now: datetime, limit: int, per_subscription: int | None):  # type: ignore[no-untyped-def]
    """Due deliveries, round-robin over subscriptions (each one's oldest first), leaving out what would put
    a subscription over ``per_subscription`` sends in flight (live claims of every worker count)."""
    rank = func.row_number().over(
        partition_by=WebhookDelivery.subscription_id,
        order_by=(WebhookDelivery.next_attempt_at, WebhookDelivery.id),
    )
    ranked = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.subscription_id,
            WebhookDelivery.next_attempt_at,
            rank.label("rank"),
        )
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(_due(now), WebhookSubscription.enabled.is_(True))
        .subquery()
    )
    query = select(ranked.c.id)
    if per_subscription is not None:
        busy = (
            select(WebhookDelivery.subscription_id, func.count().label("n"))
            .where(WebhookDelivery.status == "in_flight", WebhookDelivery.claimed_until > now)
            .group_by(WebhookDelivery.subscription_id)
            .subquery()
        )
        query = query.outerjoin(busy, busy.c.subscription_id == ranked.c.subscription_id).where(
            ranked.c.rank + func.coalesce(busy.c.n, 0) <= per_subscription
        )
    return query.order_by(ranked.c.rank, ranked.c.next_attempt_at, ranked.c.id).limit(limit)


def claim_due(
    *,
    db_session: Session,
    worker_id: str,
    limit: int,
    lease_s: float,
    per_subscription: int | None = None,
    max_attempts: int | None = None,
    now: datetime | None = None,
) -> list[Claim]:
    """Claim up to ``limit`` due deliveries of enabled subscriptions for ``lease_s`` seconds.

    Fair: subscriptions take turns, and none gets more than ``per_subscription`` sends in flight (claims
    being made at the same instant by other workers are not seen, so each may fill the cap once). Each claim
    counts as an attempt at once, so a send that kills its worker still uses up the schedule: with
    ``max_attempts``, an expired claim with none left becomes ``dead`` instead of being sent again.
    """
    if limit <= 0:
        return []
    now = now or utcnow()
    if max_attempts is not None:
        _bury_exhausted(db_session, now, max_attempts)
    if db_session.get_bind().dialect.name == "postgresql":
        # Rank first (FOR UPDATE does not go with window functions; a few spare rows in case other workers
        # hold some), then lock up to ``limit`` still-free rows in rank order (other workers skip them),
        # then stamp exactly those rows.
        ranked_ids = list(db_session.scalars(_fair_candidates(now, 4 * limit, per_subscription)))
        if not ranked_ids:
            return []
        order = case({delivery_id: i for i, delivery_id in enumerate(ranked_ids)}, value=WebhookDelivery.id)
        lock = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.id.in_(ranked_ids), _due(now))
            .order_by(order)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(db_session.scalars(lock))
        if not ids:
            return []
        chosen = WebhookDelivery.id.in_(ids)
    else:  # SQLite: one atomic statement (writers are serialized)
        chosen = WebhookDelivery.id.in_(_fair_candidates(now, limit, per_subscription).scalar_subquery())
    token = uuid.uuid4().hex
    result = db_session.execute(
        update(WebhookDelivery)
        .where(chosen, _due(now))
        .values(
            status="in_flight",
            claimed_by=worker_id,
            claim_token=token,
            claimed_until=now + timedelta(seconds=lease_s),
            attempts=WebhookDelivery.attempts + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return []
    rows = db_session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.event_id,
            WebhookDelivery.attempts,
            WebhookSubscription.id,
            WebhookSubscription.url,
            WebhookSubscription.secret,
            WebhookSubscription.previous_secret,
            WebhookSubscription.previous_secret_expires_at,
            WebhookEvent.body,
        )
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.claim_token == token)
    ).all()
    claims = []
    for delivery_id, event_id, attempts, sub_id, url, secret, previous, previous_until, body in rows:
        secrets = (secret, previous) if previous and previous_until and previous_until > now else (secret,)
        claims.append(
            Claim(
                delivery_id=delivery_id,
                token=token,
                subscription_id=sub_id,
                event_id=event_id,
                url=url,
                attempt_number=attempts,
                body=body.encode("utf-8"),
                secrets=secrets,
            )
        )
    return claims


def release(*, db_session: Session, claims: Sequence[Claim]) -> int:
    """Give unsent claims back to the queue at once, with their attempt (graceful shutdown)."""
    released = 0
    for claim in claims:
        result = db_session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == claim.delivery_id, WebhookDelivery.claim_token == claim.token)
            .values(
                status="pending",
                claimed_by=None,
                claim_token=None,
                claimed_until=None,
                attempts=WebhookDelivery.attempts - 1,
            )
            .execution_options(synchronize_session=False)
        )
        released += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return released


@dataclass
class _Outcome:
    claim: Claim
    result: SendResult
    status: str = "pending"
    next_at: datetime | None = None
    disable_reason: str | None = None


def record_results(
    *,
    db_session: Session,
    outcomes: Sequence[tuple[Claim, SendResult]],
    policy: RetryPolicy,
    worker_id: str,
    now: datetime | None = None,
) -> list[str]:
    """Log the attempts and move each delivery on (delivered, pending, dead or failed), in a few statements
    whatever the batch size. Returns the new statuses ("lost" when the lease had passed to another worker)."""
    now = now or utcnow()
    if not outcomes:
        return []
    rows = db_session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.round_start,
            WebhookSubscription.enabled,
            WebhookSubscription.failing_since,
        )
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(WebhookDelivery.id.in_([claim.delivery_id for claim, _ in outcomes]))
    ).all()
    known = {row[0]: row[1:] for row in rows}
    items = [_Outcome(claim, result) for claim, result in outcomes if claim.delivery_id in known]
    if not items:
        return ["deleted"] * len(outcomes)
    logged = set(  # by an earlier try of this very batch whose commit went through unacknowledged
        db_session.execute(
            select(WebhookAttempt.delivery_id, WebhookAttempt.number).where(
                WebhookAttempt.delivery_id.in_([o.claim.delivery_id for o in items]),
                WebhookAttempt.worker_id == worker_id,
            )
        ).tuples()
    )
    new_attempts = [o for o in items if (o.claim.delivery_id, o.claim.attempt_number) not in logged]
    if new_attempts:
        db_session.execute(
            insert(WebhookAttempt),
            [
                {
                    "delivery_id": o.claim.delivery_id,
                    "number": o.claim.attempt_number,
                    "started_at": now - timedelta(milliseconds=o.result.latency_ms),
                    "status_code": o.result.status_code,
                    "latency_ms": o.result.latency_ms,
                    "success": o.result.success,
                    "error": o.result.error,
                    "response_snippet": o.result.snippet,
                    "worker_id": worker_id,
                }
                for o in new_attempts
            ],
        )
    failing: dict[str, datetime | None] = {}  # subscription -> failing_since after this batch
    for o in items:
        round_start, enabled, failing_since = known[o.claim.delivery_id]
        sub_id = o.claim.subscription_id
        since = failing.get(sub_id, failing_since)
        result = o.result
        if result.success:
            o.status = "delivered"
            failing[sub_id] = None
            continue
        if enabled:
            since = since or now
            failing[sub_id] = since
        if result.gone:
            o.status, o.disable_reason = "failed", "the endpoint answered 410 Gone"
        elif not enabled:
            o.status = "failed"
        elif (now - since).total_seconds() >= policy.disable_after_s:
            o.status, o.disable_reason = "failed", f"failing continuously since {since.isoformat()}"
        else:
            delay = policy.next_delay(o.claim.attempt_number - round_start, result.retry_after_s)
            if delay is None:
                o.status = "dead"
            else:
                o.status, o.next_at = "pending", now + timedelta(seconds=delay)
    table = WebhookDelivery.__table__
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.claim_token == bindparam("b_token"))
        .values(
            status=bindparam("b_status"),
            attempts=bindparam("b_attempts"),
            next_attempt_at=bindparam("b_next", type_=UTCDateTime()),
            claimed_by=None,
            claim_token=None,
            claimed_until=None,
            last_status_code=bindparam("b_code"),
            last_error=bindparam("b_error"),
            delivered_at=func.coalesce(bindparam("b_delivered", type_=UTCDateTime()), table.c.delivered_at),
            updated_at=now,
        )
    )

    def params(o: _Outcome) -> dict[str, object]:
        return {
            "b_id": o.claim.delivery_id,
            "b_token": o.claim.token,
            "b_status": o.status,
            "b_attempts": o.claim.attempt_number,
            "b_next": o.next_at,
            "b_code": o.result.status_code,
            "b_error": o.result.error,
            "b_delivered": now if o.result.success else None,
        }

    conn = db_session.connection()
    updated = conn.execute(stmt, [params(o) for o in items]).rowcount
    if updated != len(items):  # some lease passed to another worker meanwhile: find which, one by one
        for o in items:
            if not conn.execute(stmt, params(o)).rowcount:
                log.warning("delivery %s: lease lost before the result was recorded", o.claim.delivery_id)
                o.status = "lost"
    for sub_id, since in failing.items():
        _, _, before = next(known[o.claim.delivery_id] for o in items if o.claim.subscription_id == sub_id)
        if since != before:
            db_session.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == sub_id)
                .values(failing_since=since)
            )
    for o in items:
        if o.disable_reason and o.status != "lost":
            sub = db_session.get(
                WebhookSubscription, o.claim.subscription_id, with_for_update=True, populate_existing=True
            )
            if sub is not None and sub.enabled:
                service.disable(db_session=db_session, subscription=sub, reason=o.disable_reason)
    for o in items:
        if not o.result.success:
            log.info(
                "delivery %s attempt %d: %s -> %s",
                o.claim.delivery_id,
                o.claim.attempt_number,
                o.result.status_code or o.result.error,
                o.status,
            )
    by_id = {o.claim.delivery_id: o.status for o in items}
    return [by_id.get(claim.delivery_id, "deleted") for claim, _ in outcomes]


def queue_counts(*, db_session: Session) -> dict[str, int]:
    """Deliveries per status."""
    rows = db_session.execute(
        select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
    ).all()
    return {status: int(n) for status, n in rows}


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
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.worker_id = worker_id
        self.policy = RetryPolicy.from_settings(settings)
        self.concurrency = max(1, settings.webhook_concurrency)
        self._min_claim = max(1, self.concurrency // 4)
        self._sender = sender
        self._box = load_secret_box(settings)  # at start: a bad NLP_SECRET_KEYS claims nothing
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
                record_results(
                    db_session=db_session, outcomes=batch, policy=self.policy, worker_id=self.worker_id
                )
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
            result = await self.sender.send(
                url=claim.url, msg_id=claim.event_id, body=claim.body, secrets=secrets
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
