"""Webhook API schemas: subscriptions and deliveries (the events' payloads: ``webhooks.payloads``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

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

from nlp_service.anomaly.tables import Severity
from nlp_service.webhooks.payloads import (
    ALERT_EVENT_TYPES,
    SUBSCRIBABLE_EVENT_TYPES,
    SubscribableEventType,
)

DeliveryStatus = Literal["pending", "in_flight", "delivered", "failed", "dead"]
WebhookFormat = Literal["standard", "slack", "teams", "email"]

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
