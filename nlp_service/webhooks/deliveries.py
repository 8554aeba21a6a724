"""Reading deliveries and sending them again (recover, retry). Services flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from nlp_service.db import rowcount
from nlp_service.errors import Conflict, NotFound
from nlp_service.timestamps import utcnow
from nlp_service.webhooks import service
from nlp_service.webhooks.tables import WebhookDelivery

RECOVERABLE = ("failed", "dead")


def get_deliveries(
    *, db_session: Session, webhook_id: str, status: str | None = None, limit: int = 50
) -> Sequence[WebhookDelivery]:
    service.get(db_session=db_session, webhook_id=webhook_id)
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == webhook_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
        .options(selectinload(WebhookDelivery.attempt_log))
    )
    if status:
        query = query.where(WebhookDelivery.status == status)
    return db_session.scalars(query).all()


def get_delivery(*, db_session: Session, delivery_id: str) -> WebhookDelivery:
    """One delivery with its attempts."""
    delivery = db_session.get(
        WebhookDelivery, delivery_id, options=[selectinload(WebhookDelivery.attempt_log)]
    )
    if delivery is None:
        raise NotFound(f"delivery {delivery_id!r} not found")
    return delivery


def _requeue_values(now: datetime) -> dict[str, Any]:
    return {
        "status": "pending",
        "next_attempt_at": now,
        "round_start": WebhookDelivery.attempts,
        "claimed_by": None,
        "claim_token": None,
        "claimed_until": None,
        "updated_at": now,
    }


def recover(*, db_session: Session, webhook_id: str, since: datetime, until: datetime | None = None) -> int:
    """Re-queue the failed and dead deliveries created in [since, until), each with a full new schedule."""
    sub = service.get(db_session=db_session, webhook_id=webhook_id)
    if not sub.enabled:
        raise Conflict(f"webhook {webhook_id!r} is disabled; enable it first")
    now = utcnow()
    result = db_session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == webhook_id,
            WebhookDelivery.status.in_(RECOVERABLE),
            WebhookDelivery.created_at >= since,
            WebhookDelivery.created_at < (until or now + timedelta(seconds=1)),
        )
        .values(**_requeue_values(now))
        .execution_options(synchronize_session=False)
    )
    db_session.flush()
    return rowcount(result)


def retry_delivery(*, db_session: Session, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again (any status but in flight): a full new schedule, the same webhook-id."""
    delivery = get_delivery(db_session=db_session, delivery_id=delivery_id)
    if delivery.status == "in_flight":
        raise Conflict(f"delivery {delivery_id!r} is being sent right now")
    if not service.get(db_session=db_session, webhook_id=delivery.subscription_id).enabled:
        raise Conflict(f"webhook {delivery.subscription_id!r} is disabled; enable it first")
    for key, value in _requeue_values(utcnow()).items():
        setattr(delivery, key, delivery.attempts if key == "round_start" else value)
    db_session.flush()
    return delivery


def queue_counts(*, db_session: Session) -> dict[str, int]:
    """Deliveries per status."""
    rows = db_session.execute(
        select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
    ).all()
    return {status: int(n) for status, n in rows}
