"""Recording send outcomes: log each attempt and move its delivery on (delivered, pending, dead or failed).

Results are written only while the claim is still ours (the token matches); attempts are always logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from nlp_service.db import UTCDateTime
from nlp_service.timestamps import utcnow
from nlp_service.webhooks import service
from nlp_service.webhooks.claims import Claim
from nlp_service.webhooks.retry import RetryPolicy
from nlp_service.webhooks.sender import SendResult
from nlp_service.webhooks.tables import WebhookAttempt, WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)


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
        elif not enabled or since is None:  # since is set whenever enabled
            o.status = "failed"
        elif (now - since).total_seconds() >= policy.disable_after_s:
            o.status, o.disable_reason = "failed", f"failing continuously since {since.isoformat()}"
        else:
            delay = policy.next_delay(o.claim.attempt_number - round_start, result.retry_after_s)
            if delay is None:
                o.status = "dead"
            else:
                o.status, o.next_at = "pending", now + timedelta(seconds=delay)
    table = cast(Table, WebhookDelivery.__table__)
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
