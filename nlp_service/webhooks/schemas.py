"""Webhook API schemas and the documented payloads of the events we send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AnyUrl, BaseModel, ConfigDict, Field, UrlConstraints, field_validator

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
Severity = Literal["low", "medium", "high", "critical"]
DeliveryStatus = Literal["pending", "in_flight", "delivered", "failed", "dead"]

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


def _fits_column(url: AnyUrl) -> AnyUrl:
    if len(str(url)) > MAX_URL_CHARS:
        raise ValueError(f"the URL is longer than {MAX_URL_CHARS} characters once encoded")
    return url


# Bounded before parsing (the raw string) and after (the normalised URL stored, often longer)
WebhookUrl = Annotated[AnyUrl, UrlConstraints(max_length=MAX_URL_CHARS), AfterValidator(_fits_column)]
FilterValue = Annotated[str, Field(min_length=1, max_length=MAX_FILTER_VALUE_CHARS)]


# --- Event payloads (what receivers get) -----------------------------------------------------------------


class AlertExplanation(BaseModel):
    """Why the alert fired (fields beyond these may be added; receivers should ignore unknown ones)."""

    model_config = ConfigDict(extra="allow")

    summary: str | None = Field(None, description="One human-readable sentence")
    baseline: float | None = Field(None, description="Expected count in the window")
    observed: float | None = Field(None, description="Observed count in the window")
    score: float | None = Field(None, description="Detector score")
    sample_comment_ids: list[str] | None = None


class AlertPayload(BaseModel):
    """An alert as sent in ``data.alert`` (unknown extra fields may appear; ignore them)."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: str = Field(description="open | resolved")
    severity: Severity | str
    topic_id: str | None = None
    topic_label: str | None = None
    segment: str | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    resolved_at: datetime | None = None
    explanation: AlertExplanation | None = None


class AlertEventData(BaseModel):
    alert: AlertPayload


class IncidentMemberPayload(BaseModel):
    """One member alert of an incident, with why it belongs."""

    model_config = ConfigDict(extra="allow")

    alert_id: str
    rank: int = Field(description="1 = the lead alert (largest excess comments, then score)")
    topic_id: str
    kind: str
    severity: Severity | str
    reason_code: str = Field(description="opened | same_segment | same_topic | aftermath")
    reason: str = Field(description="Why the alert belongs to the incident, in words")


class IncidentPayload(BaseModel):
    """An incident as sent in ``data.incident`` (unknown extra fields may appear; ignore them)."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: str = Field(description="open | resolved")
    state: str = Field(description="new | acknowledged | resolved")
    severity: Severity | str
    headline: str
    topics: list[str]
    segment: str = Field(description="The segment value carrying the incident (e.g. eu-west), or all")
    segment_field: str
    started_at: datetime
    window_end: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    resolved_reason: str | None = Field(None, description="manual | auto")
    revision: int
    members: list[IncidentMemberPayload]
    summary: dict[str, Any] = Field(
        default_factory=dict,
        description="Carried up from the lead alert's explanation: summary, nps, key_phrases, ...",
    )


class IncidentEventData(BaseModel):
    incident: IncidentPayload


class PingEventData(BaseModel):
    webhook_id: str
    message: str = "ping"


class WebhookDisabledData(BaseModel):
    webhook_id: str
    url: str = Field(description="scheme://host[:port]/… (path and query left out: they may hold tokens)")
    reason: str
    disabled_at: datetime


class WebhookEventEnvelope(BaseModel):
    """The JSON body of every webhook request."""

    id: str = Field(description="Event id; also the webhook-id header. Deduplicate on it.")
    type: EventType
    timestamp: datetime = Field(description="When the event happened (UTC, ISO 8601)")
    version: str = Field(SCHEMA_VERSION, description="Payload schema version")
    data: AlertEventData | IncidentEventData | PingEventData | WebhookDisabledData = Field(
        description="alert.*: AlertEventData; incident.*: IncidentEventData; webhook.ping: PingEventData; "
        "webhook.disabled: WebhookDisabledData"
    )


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

    url: WebhookUrl = Field(
        description="http(s) endpoint (up to 2,048 characters); private and loopback targets are refused"
    )
    description: str = Field("", max_length=500)
    event_types: list[SubscribableEventType] = Field(
        default_factory=_alert_event_types,
        min_length=1,
        max_length=len(SUBSCRIBABLE_EVENT_TYPES),
    )
    filters: WebhookFilters = Field(default_factory=WebhookFilters)
    enabled: bool = True

    @field_validator("event_types")
    @classmethod
    def _unique(cls, values: list[str] | None) -> list[str] | None:
        return _dedupe(values)


class UpdateWebhookRequest(BaseModel):
    """Fields to change; omitted ones stay. Enabling a disabled webhook clears its failure state."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl | None = None
    description: str | None = Field(None, max_length=500)
    event_types: list[SubscribableEventType] | None = Field(
        None, min_length=1, max_length=len(SUBSCRIBABLE_EVENT_TYPES)
    )
    filters: WebhookFilters | None = None
    enabled: bool | None = None

    @field_validator("event_types")
    @classmethod
    def _unique(cls, values: list[str] | None) -> list[str] | None:
        return _dedupe(values)


class WebhookPublic(BaseModel):
    """A subscription as listed; the secret is never included."""

    id: str
    url: str
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
