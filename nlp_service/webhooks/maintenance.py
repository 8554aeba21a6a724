"""Maintenance of the ``webhook-maintenance`` job: expired previous secrets, re-sealing, retention.

Services flush, never commit: the job owns the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete as sql_delete
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from nlp_service.db import rowcount
from nlp_service.hardening.secretbox import SecretBox
from nlp_service.webhooks.tables import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    utcnow,
)

FINISHED = ("delivered", "failed", "dead")  # never sent again unless recovered; retention may delete them


def clear_expired_secrets(*, db_session: Session, now: datetime | None = None) -> int:
    """Forget previous secrets whose grace period is over. Returns how many were cleared."""
    result = db_session.execute(
        update(WebhookSubscription)
        .where(
            WebhookSubscription.previous_secret_expires_at.is_not(None),
            WebhookSubscription.previous_secret_expires_at <= (now or utcnow()),
        )
        .values(previous_secret=None, previous_secret_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def reseal_secrets(*, db_session: Session, box: SecretBox) -> int:
    """Seal legacy plaintext secrets and re-seal those under an older key. Returns how many values changed.

    Each value is replaced only if it is still the one read (a rotation meanwhile wins), without row locks."""
    changed = 0
    rows = db_session.execute(
        select(WebhookSubscription.id, WebhookSubscription.secret, WebhookSubscription.previous_secret)
    ).all()
    for sub_id, *values in rows:
        for column, stored in zip(("secret", "previous_secret"), values, strict=True):
            if stored and box.needs_reseal(stored):
                attr = getattr(WebhookSubscription, column)
                result = db_session.execute(
                    update(WebhookSubscription)
                    .where(WebhookSubscription.id == sub_id, attr == stored)
                    .values({column: box.seal(box.open(stored))})
                    .execution_options(synchronize_session=False)
                )
                changed += rowcount(result)
    return changed


def purge_finished(*, db_session: Session, before: datetime, limit: int = 1000) -> tuple[int, int]:
    """Delete up to ``limit`` finished deliveries (delivered, failed, dead) last changed before ``before``,
    with their attempts, then the events older than ``before`` that no delivery refers to any more. Pending
    and in-flight deliveries (and so their events) are never deleted. Returns (deliveries, events) deleted:
    call again while either equals ``limit``."""
    ids = list(
        db_session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status.in_(FINISHED), WebhookDelivery.updated_at < before)
            .limit(limit)
        )
    )
    if ids:
        db_session.execute(sql_delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
        db_session.execute(sql_delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    orphans = list(
        db_session.scalars(
            select(WebhookEvent.id)
            .where(
                WebhookEvent.created_at < before,
                ~exists().where(WebhookDelivery.event_id == WebhookEvent.id),
            )
            .limit(limit)
        )
    )
    if orphans:
        db_session.execute(sql_delete(WebhookEvent).where(WebhookEvent.id.in_(orphans)))
    db_session.flush()
    return len(ids), len(orphans)
