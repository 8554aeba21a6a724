"""Request/response models of ``/v1/incidents``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nlp_service.anomaly.tables import AlertKind, AlertStatus, Direction, Severity
from nlp_service.cases.schemas import Owner
from nlp_service.comments.schemas import MAX_FILTER_VALUES
from nlp_service.incidents.grouping import RANK_RULE
from nlp_service.incidents.tables import ResolvedReason
from nlp_service.timestamps import Timestamp

IncidentStatusFilter = Literal["new", "acknowledged", "resolved", "closed", "open", "overdue"]


class IncidentsQuery(BaseModel):
    """Filters of ``GET /v1/incidents``."""

    model_config = ConfigDict(extra="forbid")

    status: list[IncidentStatusFilter] | None = Field(
        None,
        max_length=6,
        description="open = new or acknowledged (in progress); overdue = past the SLA of its step",
    )
    owner: list[Owner] | None = Field(
        None, max_length=MAX_FILTER_VALUES, description="assigned to one of these owners"
    )
    severity: list[Severity] | None = Field(None, max_length=MAX_FILTER_VALUES)
    since: Timestamp | None = Field(None, description="whose window ends after this")
    until: Timestamp | None = Field(None, description="whose window starts before this")
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


class IncidentMemberOut(BaseModel):
    alert_id: str
    rank: int = Field(description=f"1 = the lead alert ({RANK_RULE})")
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
    reason_code: str = Field(description="opened | same_segment | same_topic | aftermath | recurrence")
    reason: str = Field(description="why this alert belongs to the incident")
    related_alert_id: str | None = Field(None, description="the member it was matched with")
    summary: str | None = Field(None, description="the alert's explanation summary")


class IncidentOut(BaseModel):
    id: str
    headline: str
    status: AlertStatus = Field(description="new | acknowledged (in progress) | resolved | closed")
    overdue: bool = Field(description="past the SLA of its step (see due_at; the alert case SLAs)")
    due_at: datetime | None = Field(None, description="when the current step is due (null once closed)")
    owner: str | None = Field(None, description="a name or e-mail (free text)")
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
    closed_at: datetime | None = None
    note: str | None = Field(None, description="the latest note")


class IncidentPage(BaseModel):
    incidents: list[IncidentOut]
    total: int
    limit: int
    offset: int


class IncidentAction(BaseModel):
    """Optional body of an incident's acknowledge / resolve / close: a note (kept in the incident's
    history and on each member alert's case the change reaches)."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=1000)
