"""Payloads of the ``alert.created`` / ``alert.updated`` / ``alert.resolved`` webhook events, written through
``webhooks.service.enqueue_event`` in the caller's transaction (outbox). A case change (acknowledge, assign,
note, close; resolve sends ``alert.resolved``) carries its history entry as ``change``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from nlp_service.anomaly.tables import Alert
from nlp_service.cases.lifecycle import DONE_STATUSES
from nlp_service.topics.tables import ALL_SEGMENT
from nlp_service.webhooks.payloads import AlertEventData, AlertExplanation, AlertPayload, CaseChange
from nlp_service.webhooks.service import enqueue_event


def event_segment(alert: Alert) -> str:
    """The ``segment`` webhook filters match: the segment value of a segment alert; for a topic-level alert
    the top over-indexing value (e.g. ``eu-west``) if any, else ``all``."""
    if alert.segment != ALL_SEGMENT:
        return alert.segment_value
    over = (alert.explanation or {}).get("over_indexing") or []
    return str(over[0]["value"]) if over else ALL_SEGMENT


def event_payload(
    alert: Alert, topic_label: str | None = None, change: dict[str, Any] | None = None
) -> AlertEventData:
    """``data`` of ``alert.*`` events (``status`` is open | resolved, ``state`` the alert's own status:
    new | acknowledged | resolved | closed; ``change``: the case history entry the event reports)."""
    return AlertEventData(
        alert=AlertPayload(
            id=alert.id,
            status="resolved" if alert.status in DONE_STATUSES else "open",
            state=alert.status,
            severity=alert.severity,
            kind=alert.kind,
            direction=alert.direction,
            topic_id=alert.topic_id,
            topic_label=topic_label,
            segment=event_segment(alert),
            segment_field=alert.segment,
            segment_value=alert.segment_value,
            bucket=alert.bucket,
            started_at=alert.window_start,
            window_end=alert.window_end,
            updated_at=alert.updated_at,
            resolved_at=alert.resolved_at,
            revision=alert.revision,
            explanation=AlertExplanation.model_validate(alert.explanation or {}),
            owner=alert.owner,
            feedback=alert.feedback,
            closed_at=alert.closed_at,
            note=alert.note,
            change=CaseChange.model_validate(change) if change is not None else None,
        )
    )


def emit(
    db_session: Session,
    event_type: str,
    alert: Alert,
    topic_label: str | None = None,
    change: dict[str, Any] | None = None,
) -> None:
    enqueue_event(
        db_session=db_session,
        event_type=event_type,
        payload=event_payload(alert, topic_label, change),
        topic_id=alert.topic_id,
        segment=event_segment(alert),
        severity=alert.severity,
    )
