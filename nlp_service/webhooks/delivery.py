"""The delivery loop: claim due outbox rows with a lease, send them concurrently, record each outcome.

Claiming is one ``UPDATE ... WHERE id IN (due rows) AND <still due>`` stamping a claim token and a lease;
on PostgreSQL the inner select uses ``FOR UPDATE SKIP LOCKED`` so several workers share the queue, on SQLite
the single statement is atomic. A worker that dies leaves its rows ``in_flight`` until the lease expires,
then they are claimed again (same event id, so receivers deduplicate). Results are written only while the
claim is still ours (the token matches); the attempt itself is always logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.db import session_scope
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
    secrets: tuple[str, ...] = field(repr=False)


def _due(now: datetime):  # type: ignore[no-untyped-def]
    return or_(
        and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now),
        and_(WebhookDelivery.status == "in_flight", WebhookDelivery.claimed_until <= now),
    )


def claim_due(
    *, db_session: Session, worker_id: str, limit: int, lease_s: float, now: datetime | None = None
) -> list[Claim]:
    """Claim up to ``limit`` due deliveries of enabled subscriptions for ``lease_s`` seconds."""
    if limit <= 0:
        return []
    now = now or utcnow()
    candidates = (
        select(WebhookDelivery.id)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(_due(now), WebhookSubscription.enabled.is_(True))
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    if db_session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=WebhookDelivery)
    token = uuid.uuid4().hex
    result = db_session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(candidates.scalar_subquery()), _due(now))
        .values(
            status="in_flight",
            claimed_by=worker_id,
            claim_token=token,
            claimed_until=now + timedelta(seconds=lease_s),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return []
    rows = db_session.execute(
        select(WebhookDelivery, WebhookSubscription, WebhookEvent.body)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.claim_token == token)
        .execution_options(populate_existing=True)
    ).all()
    return [
        Claim(
            delivery_id=d.id,
            token=token,
            subscription_id=sub.id,
            event_id=d.event_id,
            url=sub.url,
            attempt_number=d.attempts + 1,
            body=body.encode("utf-8"),
            secrets=tuple(sub.signing_secrets(now)),
        )
        for d, sub, body in rows
    ]


def release(*, db_session: Session, claims: Sequence[Claim]) -> int:
    """Give unsent claims back to the queue at once (graceful shutdown)."""
    released = 0
    for claim in claims:
        result = db_session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == claim.delivery_id, WebhookDelivery.claim_token == claim.token)
            .values(status="pending", claimed_by=None, claim_token=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
        released += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return released


def record_result(
    *,
    db_session: Session,
    claim: Claim,
    result: SendResult,
    policy: RetryPolicy,
    worker_id: str,
    now: datetime | None = None,
) -> str:
    """Log the attempt and move the delivery on (delivered, pending, dead or failed); returns the status."""
    now = now or utcnow()
    delivery = db_session.get(WebhookDelivery, claim.delivery_id)
    sub = db_session.get(WebhookSubscription, claim.subscription_id)
    if delivery is None or sub is None:  # deleted meanwhile
        return "deleted"
    db_session.add(
        WebhookAttempt(
            delivery_id=claim.delivery_id,
            number=claim.attempt_number,
            started_at=now - timedelta(milliseconds=result.latency_ms),
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            success=result.success,
            error=result.error,
            response_snippet=result.snippet,
            worker_id=worker_id,
        )
    )
    disable_reason: str | None = None
    next_at: datetime | None = None
    if result.success:
        status = "delivered"
    elif result.gone:
        status, disable_reason = "failed", "the endpoint answered 410 Gone"
    elif not sub.enabled:
        status = "failed"
    else:
        failing_since = sub.failing_since or now
        if (now - failing_since).total_seconds() >= policy.disable_after_s:
            status = "failed"
            disable_reason = f"failing continuously since {failing_since.isoformat()}"
        else:
            delay = policy.next_delay(claim.attempt_number - delivery.round_start, result.retry_after_s)
            if delay is None:
                status = "dead"
            else:
                status, next_at = "pending", now + timedelta(seconds=delay)
    updated = db_session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == claim.delivery_id, WebhookDelivery.claim_token == claim.token)
        .values(
            status=status,
            attempts=claim.attempt_number,
            next_attempt_at=next_at,
            claimed_by=None,
            claim_token=None,
            claimed_until=None,
            last_status_code=result.status_code,
            last_error=result.error,
            delivered_at=now if result.success else delivery.delivered_at,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not updated.rowcount:  # type: ignore[attr-defined]
        log.warning("delivery %s: lease lost before the result was recorded", claim.delivery_id)
        return "lost"
    if result.success:
        if sub.failing_since is not None:
            sub.failing_since = None
    elif sub.enabled:
        if sub.failing_since is None:
            sub.failing_since = now
        if disable_reason:
            locked = db_session.get(WebhookSubscription, sub.id, with_for_update=True, populate_existing=True)
            if locked is not None and locked.enabled:
                service.disable(db_session=db_session, subscription=locked, reason=disable_reason)
    db_session.flush()
    level = logging.DEBUG if result.success else logging.INFO
    log.log(
        level,
        "delivery %s attempt %d: %s -> %s",
        claim.delivery_id,
        claim.attempt_number,
        result.status_code or result.error,
        status,
    )
    return status


def queue_counts(*, db_session: Session) -> dict[str, int]:
    """Deliveries per status."""
    rows = db_session.execute(
        select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
    ).all()
    return {status: int(n) for status, n in rows}


class DeliveryRunner:
    """Keeps up to ``webhook_concurrency`` sends in flight: call :meth:`tick` repeatedly, then ``aclose``."""

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
        self._sender = sender
        self._tasks: dict[asyncio.Task[None], Claim] = {}
        self.sent = 0

    @property
    def sender(self) -> Sender:
        if self._sender is None:
            self._sender = Sender(
                timeout_s=self.settings.webhook_timeout_s,
                policy=TargetPolicy(
                    allow_private=self.settings.webhook_allow_private,
                    allow_loopback=self.settings.webhook_allow_loopback,
                ),
                snippet_bytes=self.settings.webhook_response_snippet_bytes,
                max_connections=self.concurrency,
            )
        return self._sender

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def _claim(self, limit: int) -> list[Claim]:
        with session_scope(self.sessionmaker) as db_session:
            return claim_due(
                db_session=db_session,
                worker_id=self.worker_id,
                limit=limit,
                lease_s=self.settings.webhook_lease_s,
            )

    def _record(self, claim: Claim, result: SendResult) -> str:
        with session_scope(self.sessionmaker) as db_session:
            return record_result(
                db_session=db_session,
                claim=claim,
                result=result,
                policy=self.policy,
                worker_id=self.worker_id,
            )

    async def _deliver(self, claim: Claim) -> None:
        result = await self.sender.send(
            url=claim.url, msg_id=claim.event_id, body=claim.body, secrets=list(claim.secrets)
        )
        await asyncio.to_thread(self._record, claim, result)
        self.sent += 1

    def _done(self, task: asyncio.Task[None]) -> None:
        claim = self._tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None and claim is not None:
            log.error("delivery %s crashed", claim.delivery_id, exc_info=task.exception())

    async def tick(self) -> float | None:
        """Top up in-flight sends; returns 0 to be called again at once, None to wait the poll interval."""
        free = self.concurrency - len(self._tasks)
        if free > 0:
            for claim in await asyncio.to_thread(self._claim, free):
                task = asyncio.create_task(self._deliver(claim), name=f"webhook-{claim.delivery_id}")
                self._tasks[task] = claim
                task.add_done_callback(self._done)
        if not self._tasks:
            return None
        await asyncio.wait(
            list(self._tasks),
            timeout=self.settings.webhook_poll_interval_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        return 0.0

    async def aclose(self, grace_s: float = 10.0) -> None:
        """Let in-flight sends finish for ``grace_s``, give the rest back to the queue, close the client."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        unfinished = list(self._tasks.values())
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if unfinished:

            def _release() -> None:
                with session_scope(self.sessionmaker) as db_session:
                    release(db_session=db_session, claims=unfinished)

            await asyncio.to_thread(_release)
        if self._sender is not None:
            await self._sender.aclose()
            self._sender = None

    async def drain(self, *, timeout_s: float = 60.0) -> None:
        """Run until nothing is pending or in flight (tests, benchmarks)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            hint = await self.tick()
            if hint is None:

                def _count() -> int:
                    with session_scope(self.sessionmaker) as db_session:
                        counts = queue_counts(db_session=db_session)
                    return counts.get("pending", 0) + counts.get("in_flight", 0)

                if await asyncio.to_thread(_count) == 0:
                    return
                await asyncio.sleep(self.settings.webhook_poll_interval_s)
        raise TimeoutError("deliveries still queued")
