"""Request/response models of ``/v1/incidents``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nlp_service.anomaly.tables import AlertKind, AlertStatus, Direction, Severity
from nlp_service.comments.schemas import MAX_FILTER_VALUES
from nlp_service.incidents.tables import ResolvedReason

IncidentStatusFilter = Literal["new", "acknowledged", "resolved", "open"]


class IncidentsQuery(BaseModel):
    """Filters of ``GET /v1/incidents``."""

    model_config = ConfigDict(extra="forbid")

    status: list[IncidentStatusFilter] | None = Field(
        None, max_length=4, description="open = new or acknowledged"
    )
    severity: list[Severity] | None = Field(None, max_length=MAX_FILTER_VALUES)
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


class IncidentMemberOut(BaseModel):
    alert_id: str
    rank: int = Field(description="1 = the lead alert (largest excess comments, then score)")
    topic_id: str
    topic_label: str | None = None
    kind: AlertKind
    direction: Direction
    severity: Severity
    status: AlertStatus
    segment: str
    segment_value: str
    window_start: datetime
    window_end: datetime
    observed: float
    baseline: float
    score: float
    reason_code: str = Field(description="opened | same_segment | same_topic | aftermath")
    reason: str = Field(description="why this alert belongs to the incident")
    related_alert_id: str | None = Field(None, description="the member it was matched with")
    summary: str | None = Field(None, description="the alert's explanation summary")


class IncidentOut(BaseModel):
    id: str
    headline: str
    status: AlertStatus
    severity: Severity = Field(description="the most severe member's")
    segment: str = Field(description='the segment field carrying the incident, or "all"')
    segment_value: str
    topics: list[str]
    window_start: datetime
    window_end: datetime = Field(description="exclusive")
    summary: dict[str, Any] = Field(
        description="carried up from the lead alert's explanation: text, lead_summary, nps, key_phrases, ..."
    )
    members: list[IncidentMemberOut]
    revision: int
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolved_reason: ResolvedReason | None
    note: str | None


class IncidentPage(BaseModel):
    incidents: list[IncidentOut]
    total: int
    limit: int
    offset: int


class IncidentAction(BaseModel):
    """Optional body of an incident's acknowledge / resolve: a note (kept on each member alert's case)."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=1000)
