"""Payloads of the ``incident.created`` / ``incident.updated`` / ``incident.resolved`` webhook events
(``IncidentEventData``), written through ``webhooks.service.enqueue_event`` in the caller's transaction.
A case change (acknowledge, assign, note, close; resolve sends ``incident.resolved``) carries its history
entry as ``change``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from nlp_service.anomaly.tables import Alert
from nlp_service.cases.lifecycle import DONE_STATUSES
from nlp_service.incidents.tables import Incident, IncidentMember
from nlp_service.topics.tables import ALL_SEGMENT
from nlp_service.webhooks.service import enqueue_event


def member_fields(link: IncidentMember, alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.id,
        "rank": link.rank,
        "topic_id": alert.topic_id,
        "kind": alert.kind,
        "direction": alert.direction,
        "severity": alert.severity,
        "status": alert.status,
        "segment_field": alert.segment,
        "segment_value": alert.segment_value,
        "reason_code": link.reason_code,
        "reason": link.reason,
        "related_alert_id": link.related_alert_id,
    }


def event_payload(
    incident: Incident,
    members: Sequence[tuple[IncidentMember, Alert]],
    change: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``data`` of ``incident.*`` events; ``members`` ranked (``incidents.service.members_of``); ``change``:
    the case history entry the event reports (``cases.service.entry_payload``), if any."""
    return {
        "incident": {
            "id": incident.id,
            "status": "resolved" if incident.status in DONE_STATUSES else "open",
            "state": incident.status,
            "severity": incident.severity,
            "headline": incident.headline,
            "topics": list(incident.topics),
            "segment": incident.segment_value,
            "segment_field": incident.segment,
            "started_at": incident.window_start,
            "window_end": incident.window_end,
            "created_at": incident.created_at,
            "updated_at": incident.updated_at,
            "resolved_at": incident.resolved_at,
            "resolved_reason": incident.resolved_reason,
            "revision": incident.revision,
            "members": [member_fields(link, alert) for link, alert in members],
            "summary": incident.summary or {},
            "owner": incident.owner,
            "note": incident.note,
            "closed_at": incident.closed_at,
            "change": change,
        }
    }


def emit(
    db_session: Session,
    event_type: str,
    incident: Incident,
    members: Sequence[tuple[IncidentMember, Alert]],
    change: dict[str, Any] | None = None,
) -> None:
    enqueue_event(
        db_session=db_session,
        event_type=event_type,
        payload=event_payload(incident, members, change),
        topic_ids=list(incident.topics),
        segment=incident.segment_value if incident.segment != ALL_SEGMENT else ALL_SEGMENT,
        severity=incident.severity,
    )
