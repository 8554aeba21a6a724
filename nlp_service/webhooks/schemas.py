"""Webhook API schemas and the documented payloads of the events we send."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    UrlConstraints,
    field_validator,
    model_validator,
)

from nlp_service.anomaly.tables import AlertKind, AlertStatus, Bucket, Direction, Severity

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
DeliveryStatus = Literal["pending", "in_flight", "delivered", "failed", "dead"]
WebhookFormat = Literal["standard", "slack", "teams", "email"]

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
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")  # ascending

MAX_URL_CHARS = 2048  # the stored URL (after normalisation and percent-encoding); the column's size
MAX_FILTER_VALUES = 200  # topics or segments in one filter
MAX_FILTER_VALUE_CHARS = 200  # one topic id or segment value
MAX_RECIPIENTS = 20
MAILTO = "mailto:"
EMAIL_PATTERN = r"^[^@\s,;<>()\"']+@[^@\s,;<>()\"'.]+(\.[^@\s,;<>()\"'.]+)+$"


def _fits_column(url: AnyUrl) -> AnyUrl:
    if len(str(url)) > MAX_URL_CHARS:
        raise ValueError(f"the URL is longer than {MAX_URL_CHARS} characters once encoded")
    return url


# Bounded before parsing (the raw string) and after (the normalised URL stored, often longer)
WebhookUrl = Annotated[AnyUrl, UrlConstraints(max_length=MAX_URL_CHARS), AfterValidator(_fits_column)]
FilterValue = Annotated[str, Field(min_length=1, max_length=MAX_FILTER_VALUE_CHARS)]
Recipient = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_PATTERN, to_lower=False)
]
FORMAT_DESCRIPTION = (
    "standard: the signed event JSON (Standard Webhooks); slack: an incoming-webhook message with blocks; "
    "teams: a message with an Adaptive Card; email: an e-mail to `recipients` over the configured SMTP server"
)


def mailto_url(recipients: Sequence[str]) -> str:
    """How an e-mail subscription's recipients are stored (its ``url``)."""
    return MAILTO + ",".join(recipients)


def recipients_of(url: str) -> list[str]:
    """The addresses of a stored ``mailto:`` URL (none for any other URL)."""
    return [a for a in url[len(MAILTO) :].split(",") if a] if url.startswith(MAILTO) else []


def check_target(fmt: str, url: object | None, recipients: list[str] | None) -> None:
    """An e-mail subscription has recipients and no URL; the others a URL and no recipients."""
    if fmt == "email":
        if not recipients:
            raise ValueError("format email needs recipients")
        if url is not None:
            raise ValueError("format email takes recipients, not a url")
        if len(mailto_url(recipients)) > MAX_URL_CHARS:
            raise ValueError(f"the recipients take more than {MAX_URL_CHARS} characters")
    else:
        if url is None:
            raise ValueError(f"format {fmt} needs a url")
        if recipients:
            raise ValueError("recipients are for format email only")


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
    rank: int = Field(description="1 = the lead alert (largest excess comments, then score)")
    topic_id: str
    kind: AlertKind
    direction: Direction
    severity: Severity
    status: AlertStatus = Field(description="The member alert's own status")
    segment_field: str = Field(description='"all" or region | touchpoint | source')
    segment_value: str
    reason_code: str = Field(description="opened | same_segment | same_topic | aftermath")
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


# --- Subscriptions ------------------------------------------------------------------------------------------


def _alert_event_types() -> list[SubscribableEventType]:
    return list(ALERT_EVENT_TYPES)


def _dedupe(values: list[str] | None) -> list[str] | None:
    return None if values is None else list(dict.fromkeys(values))


class WebhookFilters(BaseModel):
    """Narrow alert and incident events (an incident matches ``topics`` if any of its topics is listed);
    an empty or missing filter matches everything. Other events ignore filters."""

    model_config = ConfigDict(extra="forbid")

    topics: list[FilterValue] | None = Field(None, max_length=MAX_FILTER_VALUES, description="Topic ids")
    segments: list[FilterValue] | None = Field(None, max_length=MAX_FILTER_VALUES)
    min_severity: Severity | None = None

    @field_validator("topics", "segments")
    @classmethod
    def _unique(cls, values: list[str] | None) -> list[str] | None:
        return _dedupe(values)


class CreateWebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl | None = Field(
        None,
        description="http(s) endpoint (up to 2,048 characters); private and loopback targets are refused. "
        "Required unless format is email",
    )
    format: WebhookFormat = Field("standard", description=FORMAT_DESCRIPTION)
    recipients: list[Recipient] | None = Field(
        None, min_length=1, max_length=MAX_RECIPIENTS, description="format email: the addresses"
    )
    description: str = Field("", max_length=500)
    event_types: list[SubscribableEventType] = Field(
        default_factory=_alert_event_types,
        min_length=1,
        max_length=len(SUBSCRIBABLE_EVENT_TYPES),
    )
    filters: WebhookFilters = Field(default_factory=WebhookFilters)
    enabled: bool = True

    @field_validator("event_types", "recipients")
    @classmethod
    def _unique(cls, values: list[str] | None) -> list[str] | None:
        return _dedupe(values)

    @model_validator(mode="after")
    def _target(self) -> CreateWebhookRequest:
        check_target(self.format, self.url, self.recipients)
        return self


class UpdateWebhookRequest(BaseModel):
    """Fields to change; omitted ones stay. Enabling a disabled webhook clears its failure state."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl | None = None
    format: WebhookFormat | None = Field(None, description="standard, slack or teams (not to or from email)")
    recipients: list[Recipient] | None = Field(
        None, min_length=1, max_length=MAX_RECIPIENTS, description="format email: the new addresses"
    )
    description: str | None = Field(None, max_length=500)
    event_types: list[SubscribableEventType] | None = Field(
        None, min_length=1, max_length=len(SUBSCRIBABLE_EVENT_TYPES)
    )
    filters: WebhookFilters | None = None
    enabled: bool | None = None

    @field_validator("event_types", "recipients")
    @classmethod
    def _unique(cls, values: list[str] | None) -> list[str] | None:
        return _dedupe(values)


class WebhookPublic(BaseModel):
    """A subscription as listed; the secret is never included."""

    id: str
    url: str = Field(description="the endpoint; for format email mailto: with the recipients")
    format: WebhookFormat = "standard"
    recipients: list[str] | None = Field(None, description="format email: the addresses")
    description: str
    event_types: list[str]
    filters: WebhookFilters
    enabled: bool
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    created_at: datetime
    updated_at: datetime


class CreateWebhookResponse(WebhookPublic):
    secret: str = Field(description="Signing secret (whsec_...). Shown only once: store it now.")


class ListWebhooksResponse(BaseModel):
    items: list[WebhookPublic]


class RotateSecretResponse(BaseModel):
    secret: str = Field(description="The new signing secret, shown only once")
    previous_secret_expires_at: datetime = Field(
        description="Until then both secrets sign each message (two signatures in webhook-signature)"
    )


class PingResponse(BaseModel):
    event_id: str
    delivery_id: str


# --- Deliveries ---------------------------------------------------------------------------------------------


class AttemptPublic(BaseModel):
    number: int
    started_at: datetime
    status_code: int | None
    latency_ms: float
    success: bool
    error: str | None
    response_snippet: str | None


class DeliveryPublic(BaseModel):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptPublic] = Field(default_factory=list)


class ListDeliveriesResponse(BaseModel):
    items: list[DeliveryPublic]


class RecoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime = Field(description="Re-queue failed and dead deliveries created at or after this time")
    until: datetime | None = Field(None, description="... and before this time (default: now)")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Naive times are taken as UTC."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class RecoverResponse(BaseModel):
    requeued: int
