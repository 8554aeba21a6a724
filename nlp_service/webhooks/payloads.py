"""The events we send to webhook receivers: their types and documented payloads (one source for the sender and
the OpenAPI ``webhooks`` section)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nlp_service.anomaly.tables import AlertKind, AlertStatus, Bucket, Direction, Severity
from nlp_service.incidents.grouping import RANK_RULE

SCHEMA_VERSION = "2026-11-01"

AlertEventType = Literal["alert.created", "alert.updated", "alert.resolved"]
IncidentEventType = Literal["incident.created", "incident.updated", "incident.resolved"]
EventType = Literal[
    "alert.created",
    "alert.updated",
    "alert.resolved",
    "incident.created",
    "incident.updated",
    "incident.resolved",
    "webhook.ping",
    "webhook.disabled",
]
SubscribableEventType = Literal[
    "alert.created",
    "alert.updated",
    "alert.resolved",
    "incident.created",
    "incident.updated",
    "incident.resolved",
    "webhook.disabled",
]
ALERT_EVENT_TYPES: tuple[AlertEventType, ...] = ("alert.created", "alert.updated", "alert.resolved")
INCIDENT_EVENT_TYPES: tuple[IncidentEventType, ...] = (
    "incident.created",
    "incident.updated",
    "incident.resolved",
)
FILTERED_EVENT_TYPES: tuple[str, ...] = (*ALERT_EVENT_TYPES, *INCIDENT_EVENT_TYPES)  # filters apply to these
EVENT_TYPES: tuple[EventType, ...] = (
    *ALERT_EVENT_TYPES,
    *INCIDENT_EVENT_TYPES,
    "webhook.ping",
    "webhook.disabled",
)
# ping goes to its target only
SUBSCRIBABLE_EVENT_TYPES: tuple[SubscribableEventType, ...] = (
    *ALERT_EVENT_TYPES,
    *INCIDENT_EVENT_TYPES,
    "webhook.disabled",
)


# --- Event payloads (what receivers get) -----------------------------------------------------------------
# One source: the sender builds every body through these models (``service.event_body``), and the OpenAPI
# ``webhooks`` section is generated from them (``views.document_webhooks``), so the two cannot drift.


def _receivers_ignore_unknown(schema: dict[str, Any]) -> None:
    schema.pop("additionalProperties", None)  # later versions may add fields: receivers ignore them


class EventModel(BaseModel):
    """Base of the event models: building one with an undocumented field fails (the sender's bug, caught by
    the contract test); the published schema stays open to fields a later version adds."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_receivers_ignore_unknown)


class AlertExplanation(BaseModel):
    """Why the alert fired: the object ``GET /v1/alerts/{id}`` shows as ``explanation``. The fields listed
    are there once the alert is explained; the others depend on ``kind`` (volume alerts: ``significance``,
    ``volume``, ``over_indexing``, ``nps``, ``negative_share``, ``intensity``...; ``emerging_topic``:
    ``keywords``, ``size``, ``previous_size``, ``growth``, ``representatives``...)."""

    model_config = ConfigDict(extra="allow")

    summary: str | None = Field(None, description="One human-readable sentence (absent before explaining)")
    sample_comment_ids: list[str] = Field(
        default_factory=list, description="The representative comments' ids"
    )
    severity_rule: str | None = Field(None, description="How the severity was set")


class CaseChange(EventModel):
    """One entry of an alert's or an incident's case history (``GET /v1/alerts/{id}/history``,
    ``GET /v1/incidents/{id}/history``)."""

    id: int
    at: datetime
    actor: str = Field(description='API key id, "open" (keys off) or "system"')
    action: str = Field(description="acknowledged, resolved, closed, assigned, note, ...")
    from_status: str | None = None
    to_status: str | None = None
    owner: str | None = None
    note: str | None = None
    feedback: str | None = None
    details: dict[str, Any] | None = Field(None, description="e.g. previous_owner for an assignment")


class AlertPayload(EventModel):
    """An alert as sent in ``data.alert``."""

    id: str
    status: Literal["open", "resolved"] = Field(
        description="open (new or acknowledged) | resolved (resolved or closed)"
    )
    state: AlertStatus = Field(
        description="The alert's own status: new | acknowledged (in progress) | resolved | closed"
    )
    severity: Severity
    kind: AlertKind
    direction: Direction
    topic_id: str = Field(description="The topic; ``_emerging`` for emerging-topic alerts")
    topic_label: str | None = None
    segment: str = Field(
        description="What segment filters match: the segment value of a segment alert; for a topic-level "
        "alert the top over-indexing value if any, else ``all``"
    )
    segment_field: str = Field(description='"all" or region | touchpoint | source')
    segment_value: str
    bucket: Bucket = Field(description="Bucket size of the peak")
    started_at: datetime = Field(description="Window start")
    window_end: datetime = Field(description="Window end (exclusive)")
    updated_at: datetime
    resolved_at: datetime | None = None
    revision: int = Field(description="Grows by one with each change the alert's episode or case makes")
    explanation: AlertExplanation
    owner: str | None = Field(None, description="the case's owner (a name or e-mail)")
    feedback: str | None = Field(None, description="useful | not_useful")
    closed_at: datetime | None = None
    note: str | None = Field(None, description="the latest note")
    change: CaseChange | None = Field(
        None, description="the case change this event reports (assign, note, status, ...), if any"
    )


class AlertEventData(EventModel):
    alert: AlertPayload


class IncidentMemberPayload(EventModel):
    """One member alert of an incident, with why it belongs."""

    alert_id: str
    rank: int = Field(description=f"1 = the lead alert ({RANK_RULE})")
    topic_id: str
    kind: AlertKind
    direction: Direction
    severity: Severity
    status: AlertStatus = Field(description="The member alert's own status")
    segment_field: str = Field(description='"all" or region | touchpoint | source')
    segment_value: str
    reason_code: str = Field(description="opened | same_segment | same_topic | aftermath | recurrence")
    reason: str = Field(description="Why the alert belongs to the incident, in words")
    related_alert_id: str | None = Field(None, description="The member alert this one was matched with")


class IncidentPayload(EventModel):
    """An incident as sent in ``data.incident``."""

    id: str
    status: Literal["open", "resolved"] = Field(
        description="open (new or acknowledged) | resolved (resolved or closed)"
    )
    state: str = Field(
        description="The incident's own status: new | acknowledged (in progress) | resolved | closed"
    )
    severity: Severity
    headline: str
    topics: list[str]
    segment: str = Field(description="The segment value carrying the incident (e.g. eu-west), or all")
    segment_field: str
    started_at: datetime
    window_end: datetime
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    resolved_reason: str | None = Field(None, description="manual | auto")
    revision: int
    members: list[IncidentMemberPayload]
    summary: dict[str, Any] = Field(
        default_factory=dict,
        description="Carried up from the lead alert's explanation: summary, nps, key_phrases, ...",
    )
    owner: str | None = Field(None, description="the case's owner (a name or e-mail)")
    note: str | None = Field(None, description="the latest note")
    closed_at: datetime | None = None
    change: CaseChange | None = Field(
        None, description="the case change this event reports (assign, note, status, ...), if any"
    )


class IncidentEventData(EventModel):
    incident: IncidentPayload


class PingEventData(EventModel):
    webhook_id: str
    message: str = "ping"


class WebhookDisabledData(EventModel):
    webhook_id: str
    url: str = Field(description="scheme://host[:port]/… (path and query left out: they may hold tokens)")
    reason: str
    disabled_at: datetime


class WebhookEventEnvelope(EventModel):
    """The JSON body of every webhook request."""

    id: str = Field(description="Event id; also the webhook-id header. Deduplicate on it.")
    type: EventType
    timestamp: datetime = Field(description="When the event happened (UTC, ISO 8601)")
    version: str = Field(SCHEMA_VERSION, description="Payload schema version")
    data: EventModel


class AlertEvent(WebhookEventEnvelope):
    type: AlertEventType
    data: AlertEventData


class IncidentEvent(WebhookEventEnvelope):
    type: IncidentEventType
    data: IncidentEventData


class PingEvent(WebhookEventEnvelope):
    type: Literal["webhook.ping"]
    data: PingEventData


class WebhookDisabledEvent(WebhookEventEnvelope):
    type: Literal["webhook.disabled"]
    data: WebhookDisabledData


@dataclass(frozen=True)
class EventSpec:
    """An event type's body model (built and published) and its one-line description."""

    model: type[WebhookEventEnvelope]
    summary: str


EVENTS: dict[str, EventSpec] = {
    "alert.created": EventSpec(AlertEvent, "A topic-volume or emerging-topic alert was raised"),
    "alert.updated": EventSpec(
        AlertEvent,
        "An alert changed: detection (severity, counts, explanation) or its case (acknowledged = in "
        "progress, assigned, a note, closed; `data.alert.change` holds the history entry)",
    ),
    "alert.resolved": EventSpec(AlertEvent, "An alert was resolved"),
    "incident.created": EventSpec(IncidentEvent, "Related alerts were grouped into a new incident"),
    "incident.updated": EventSpec(
        IncidentEvent,
        "An incident changed: detection (members, severity, window) or its case (acknowledged = in progress, "
        "assigned, a note, closed; `data.incident.change` holds the history entry)",
    ),
    "incident.resolved": EventSpec(
        IncidentEvent, "An incident was resolved (by a person, or auto after quiet buckets)"
    ),
    "webhook.ping": EventSpec(PingEvent, "Sent by POST /v1/webhooks/{id}/ping"),
    "webhook.disabled": EventSpec(
        WebhookDisabledEvent, "A subscription was disabled (410 Gone or failing too long)"
    ),
}


def sample_alert_data(alert_id: str = "alr_example", **changes: Any) -> AlertEventData:
    """A complete ``alert.*`` payload with example values (benchmarks, scripts, tests)."""
    at = datetime(2026, 1, 5, 9, tzinfo=UTC)
    alert = {
        "id": alert_id,
        "status": "open",
        "state": "new",
        "severity": "high",
        "kind": "spike",
        "direction": "up",
        "topic_id": "billing_payments",
        "topic_label": "Billing & payments",
        "segment": "all",
        "segment_field": "all",
        "segment_value": "all",
        "bucket": "hour",
        "started_at": at,
        "window_end": at + timedelta(hours=2),
        "updated_at": at + timedelta(hours=2),
        "revision": 1,
        "explanation": {
            "summary": "Billing & payments comments spiked: 48 in the peak hour vs 6.0 expected (score 9.1).",
            "sample_comment_ids": [],
            "severity_rule": "min(score level, excess level); score |z| >= 6/10/16, excess >= 20/50/200",
        },
        **changes,
    }
    return AlertEventData(alert=AlertPayload.model_validate(alert))
