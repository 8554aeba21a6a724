"""Webhook subscriptions and the event outbox. Services flush, never commit: callers own the transaction.

Deliveries (reads, recover, retry) are in :mod:`deliveries`; the maintenance job's work is in
:mod:`maintenance`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Table, func, select, text, update
from sqlalchemy.orm import Session

from nlp_service.errors import Conflict, InvalidInput, NotFound
from nlp_service.hardening.logs import redact_url
from nlp_service.hardening.secretbox import SecretBox
from nlp_service.timestamps import utcnow
from nlp_service.webhooks.payloads import (
    EVENT_TYPES,
    EVENTS,
    FILTERED_EVENT_TYPES,
    SCHEMA_VERSION,
    PingEventData,
    WebhookDisabledData,
)
from nlp_service.webhooks.safety import TargetPolicy, UnsafeTarget, resolve_target
from nlp_service.webhooks.schemas import (
    SEVERITIES,
    CreateWebhookRequest,
    UpdateWebhookRequest,
    WebhookFilters,
    mailto_url,
)
from nlp_service.webhooks.signing import generate_secret
from nlp_service.webhooks.tables import WebhookDelivery, WebhookEvent, WebhookSubscription

log = logging.getLogger(__name__)

SUBSCRIPTIONS_LOCK = 0x6E6C7057  # PostgreSQL advisory lock serializing creations against the cap


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def check_url(url: str, policy: TargetPolicy) -> str:
    """The URL if it is an allowed target, else :class:`InvalidInput` (422) naming the reason."""
    try:
        resolve_target(url, policy)
    except UnsafeTarget as exc:
        raise InvalidInput(
            f"webhook URL refused: {exc}",
            detail=[{"field": "url", "message": str(exc), "type": "unsafe_url"}],
        ) from exc
    return url


# --- Subscriptions ------------------------------------------------------------------------------------------


def get(*, db_session: Session, webhook_id: str) -> WebhookSubscription:
    sub = db_session.get(WebhookSubscription, webhook_id)
    if sub is None:
        raise NotFound(f"webhook {webhook_id!r} not found")
    return sub


def get_all(*, db_session: Session, enabled: bool | None = None) -> Sequence[WebhookSubscription]:
    query = select(WebhookSubscription).order_by(WebhookSubscription.created_at, WebhookSubscription.id)
    if enabled is not None:
        query = query.where(WebhookSubscription.enabled == enabled)
    return db_session.scalars(query).all()


def _apply_filters(sub: WebhookSubscription, filters: WebhookFilters) -> None:
    sub.filter_topics = filters.topics or None
    sub.filter_segments = filters.segments or None
    sub.min_severity = filters.min_severity


def create(
    *,
    db_session: Session,
    request: CreateWebhookRequest,
    policy: TargetPolicy,
    box: SecretBox,
    max_subscriptions: int,
    email_enabled: bool = True,
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its signing secret (the only time the secret is returned; stored sealed).

    :class:`Conflict` (409) when ``max_subscriptions`` exist already (every event reads them all); format
    ``email`` needs ``email_enabled`` (an SMTP server configured; 422 otherwise)."""
    if request.format == "email":
        if not email_enabled:
            raise InvalidInput(
                "e-mail notifications need an SMTP server (NLP_SMTP_HOST)",
                detail=[{"field": "format", "message": "no SMTP server configured", "type": "unavailable"}],
            )
        url = mailto_url(request.recipients or [])
    else:
        url = check_url(str(request.url), policy)
    if db_session.get_bind().dialect.name == "postgresql":  # concurrent creations count one at a time
        db_session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SUBSCRIPTIONS_LOCK})
    secret = generate_secret()
    now = utcnow()
    sub = WebhookSubscription(
        id=new_id("wh"),
        url=url,
        description=request.description,
        event_types=list(request.event_types),
        format=request.format,
        enabled=request.enabled,
        disabled_reason=None if request.enabled else "disabled by user",
        disabled_at=None if request.enabled else now,
        secret=box.seal(secret),
        created_at=now,
        updated_at=now,
    )
    _apply_filters(sub, request.filters)
    db_session.add(sub)
    db_session.flush()  # inserted before counting: on SQLite the write lock orders concurrent creations
    if (
        db_session.execute(select(func.count()).select_from(WebhookSubscription)).scalar_one()
        > max_subscriptions
    ):
        raise Conflict(
            f"at most {max_subscriptions} webhook subscriptions (NLP_WEBHOOK_MAX_SUBSCRIPTIONS): "
            "delete one first"
        )
    log.info("webhook %s created for %s", sub.id, redact_url(url))
    return sub, secret


def update_subscription(
    *, db_session: Session, webhook_id: str, request: UpdateWebhookRequest, policy: TargetPolicy
) -> WebhookSubscription:
    """Change the given fields. Re-enabling clears the failure state; disabling fails pending deliveries."""
    sub = get(db_session=db_session, webhook_id=webhook_id)
    changes = request.model_dump(exclude_unset=True)
    _check_target_change(sub, request)
    if changes.get("url") is not None:
        sub.url = check_url(str(request.url), policy)
    if request.recipients:
        sub.url = mailto_url(request.recipients)
    if request.format is not None:
        sub.format = request.format
    if request.description is not None:
        sub.description = request.description
    if request.event_types is not None:
        sub.event_types = list(request.event_types)
    if request.filters is not None:
        _apply_filters(sub, request.filters)
    if request.enabled is True and not sub.enabled:
        sub.enabled, sub.disabled_reason, sub.disabled_at, sub.failing_since = True, None, None, None
    elif request.enabled is False and sub.enabled:
        disable(db_session=db_session, subscription=sub, reason="disabled by user", notify=False)
    sub.updated_at = utcnow()
    db_session.flush()
    return sub


def _check_target_change(sub: WebhookSubscription, request: UpdateWebhookRequest) -> None:
    """422 for a change that does not fit the subscription's kind of target (URL vs e-mail recipients)."""
    problem = None
    if (
        request.format is not None
        and request.format != sub.format
        and "email" in (request.format, sub.format)
    ):
        problem = ("format", "cannot change to or from email: create another subscription")
    elif sub.format == "email" and request.url is not None:
        problem = ("url", "an email subscription has recipients, not a url")
    elif sub.format != "email" and request.recipients:
        problem = ("recipients", "recipients are for format email only")
    if problem is not None:
        raise InvalidInput(
            f"invalid {problem[0]}: {problem[1]}", detail=[{"field": problem[0], "message": problem[1]}]
        )


def delete(*, db_session: Session, webhook_id: str) -> None:
    """Delete the subscription with its deliveries and attempts (events stay as a log)."""
    sub = get(db_session=db_session, webhook_id=webhook_id)
    db_session.execute(
        cast(Table, WebhookDelivery.__table__).delete().where(WebhookDelivery.subscription_id == webhook_id)
    )
    db_session.delete(sub)
    db_session.flush()


def rotate_secret(
    *, db_session: Session, webhook_id: str, grace_s: float, box: SecretBox
) -> tuple[WebhookSubscription, str, datetime]:
    """A new secret; the current one stays valid (and keeps signing) for ``grace_s`` seconds (none if 0)."""
    sub = get(db_session=db_session, webhook_id=webhook_id)
    new_secret = generate_secret()
    now = utcnow()
    expires = now + timedelta(seconds=max(0.0, grace_s))
    if expires > now:  # re-sealed: a legacy plaintext current secret does not stay plaintext
        sub.previous_secret, sub.previous_secret_expires_at = box.seal(box.open(sub.secret)), expires
    else:
        sub.previous_secret, sub.previous_secret_expires_at = None, None
    sub.secret = box.seal(new_secret)
    sub.updated_at = now
    db_session.flush()
    log.info("webhook %s secret rotated; previous valid until %s", sub.id, expires.isoformat())
    return sub, new_secret, expires


def disable(
    *, db_session: Session, subscription: WebhookSubscription, reason: str, notify: bool = True
) -> None:
    """Disable a subscription, fail its pending deliveries and (if ``notify``) emit ``webhook.disabled``."""
    now = utcnow()
    subscription.enabled = False
    subscription.disabled_reason = reason[:500]
    subscription.disabled_at = now
    subscription.updated_at = now
    db_session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription.id, WebhookDelivery.status == "pending")
        .values(status="failed", last_error=f"webhook disabled: {reason}"[:500], updated_at=now)
    )
    db_session.flush()
    log.warning("webhook %s disabled: %s", subscription.id, reason)
    if notify:
        data = WebhookDisabledData(
            webhook_id=subscription.id,
            url=redact_url(subscription.url),  # others receive this: no path or query (tokens)
            reason=reason,
            disabled_at=now,
        )
        enqueue_event(db_session=db_session, event_type="webhook.disabled", payload=data)


# --- Events -------------------------------------------------------------------------------------------------


def _severity_rank(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def matches(
    sub: WebhookSubscription,
    event_type: str,
    *,
    topic_id: str | None = None,
    segment: str | None = None,
    severity: str | None = None,
    topic_ids: Sequence[str] = (),
) -> bool:
    """Whether an enabled subscription wants the event (filters apply to ``alert.*`` and ``incident.*``
    events only; ``topic_ids``: an incident's topics, any of which matches the topics filter)."""
    if not sub.enabled or event_type not in sub.event_types:
        return False
    if event_type not in FILTERED_EVENT_TYPES:
        return True
    topics = {topic_id, *topic_ids} - {None}
    if sub.filter_topics and not topics & set(sub.filter_topics):
        return False
    if sub.filter_segments and segment not in sub.filter_segments:
        return False
    if sub.min_severity and _severity_rank(severity) < _severity_rank(sub.min_severity):
        return False
    return True


def event_body(event_id: str, event_type: str, created_at: datetime, data: BaseModel | dict[str, Any]) -> str:
    """The JSON body sent for an event, built through its published model (``payloads.EVENTS``): a payload
    that does not match the documented schema raises ``pydantic.ValidationError`` instead of being sent."""
    envelope = EVENTS[event_type].model.model_validate(
        {"id": event_id, "type": event_type, "timestamp": created_at, "version": SCHEMA_VERSION, "data": data}
    )
    return envelope.model_dump_json()


def _write_event(
    db_session: Session,
    event_type: str,
    payload: BaseModel | dict[str, Any],
    targets: Sequence[WebhookSubscription],
) -> tuple[WebhookEvent, list[WebhookDelivery]]:
    now = utcnow()
    event_id = new_id("evt")
    event = WebhookEvent(
        id=event_id, type=event_type, body=event_body(event_id, event_type, now, payload), created_at=now
    )
    db_session.add(event)
    deliveries = [
        WebhookDelivery(
            id=new_id("dlv"),
            event_id=event_id,
            subscription_id=sub.id,
            event_type=event_type,
            status="pending",
            attempts=0,
            round_start=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        for sub in targets
    ]
    db_session.add_all(deliveries)
    db_session.flush()
    return event, deliveries


def enqueue_event(
    *,
    db_session: Session,
    event_type: str,
    payload: BaseModel | dict[str, Any],
    topic_id: str | None = None,
    segment: str | None = None,
    severity: str | None = None,
    topic_ids: Sequence[str] = (),
) -> list[WebhookDelivery]:
    """Write one outbox row per enabled subscription that wants this event; call it inside your transaction.

    ``payload`` becomes the event's ``data``, validated by the event's model (``payloads.EVENTS``; for
    alerts ``AlertEventData``); the envelope (id, type, timestamp, version) is added here. ``topic_id`` (or
    ``topic_ids``, any of which matches), ``segment`` and ``severity`` are what subscription filters match
    against. The event is stored only if someone receives it, except ``webhook.disabled``, always kept as a
    record. Returns the new
    deliveries (flushed, not committed).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    subs = db_session.scalars(select(WebhookSubscription).where(WebhookSubscription.enabled.is_(True))).all()
    targets = [
        s
        for s in subs
        if matches(s, event_type, topic_id=topic_id, segment=segment, severity=severity, topic_ids=topic_ids)
    ]
    if not targets and event_type != "webhook.disabled":
        return []
    _, deliveries = _write_event(db_session, event_type, payload, targets)
    return deliveries


def ping(*, db_session: Session, webhook_id: str) -> WebhookDelivery:
    """Queue a ``webhook.ping`` to this subscription only."""
    sub = get(db_session=db_session, webhook_id=webhook_id)
    if not sub.enabled:
        raise Conflict(f"webhook {webhook_id!r} is disabled; enable it first")
    _, deliveries = _write_event(db_session, "webhook.ping", PingEventData(webhook_id=sub.id), [sub])
    return deliveries[0]
