"""Claiming due outbox rows with a lease, and giving unsent claims back.

Claiming stamps a claim token and a lease on due rows, re-checking that they are still due, and counts the
attempt: on PostgreSQL the rows are first selected ``FOR UPDATE SKIP LOCKED`` so several workers share the
queue; on SQLite it is one atomic ``UPDATE ... WHERE id IN (due rows) AND <still due>``. Claims are fair:
subscriptions take turns and each has a cap on sends in flight, so one slow endpoint cannot take every slot.
A worker that dies leaves its rows ``in_flight`` until the lease expires, then they are claimed again (same
event id, so receivers deduplicate) until the schedule's attempts are used up.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from nlp_service.db import rowcount
from nlp_service.timestamps import utcnow
from nlp_service.webhooks.tables import WebhookDelivery, WebhookEvent, WebhookSubscription


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
    format: str = "standard"  # the subscription's notification format (webhooks.channels)


def _due(now: datetime) -> ColumnElement[bool]:
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


def _fair_candidates(now: datetime, limit: int, per_subscription: int | None) -> Select[Any]:
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
    if not rowcount(result):
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
            WebhookSubscription.format,
        )
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.claim_token == token)
    ).all()
    claims = []
    for row in rows:
        delivery_id, event_id, attempts, sub_id, url, secret, previous, previous_until, body, fmt = tuple(row)
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
                format=fmt,
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
        released += rowcount(result)
    return released
