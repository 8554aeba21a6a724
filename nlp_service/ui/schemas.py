"""Request/response models of the dashboard's own endpoints (``/ui/session``, ``/ui/api/*``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nlp_service.anomaly.schemas import ChangePointOut, SpikeOut
from nlp_service.comments.schemas import Name
from nlp_service.insights.schemas import NpsGroup
from nlp_service.timestamps import Timestamp

SegmentField = Literal["region", "touchpoint", "source"]


class SignInRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200, description="An API key (nlp_...)")


class MeOut(BaseModel):
    """Who the page is for: what it may show and which actions it may offer."""

    keys_on: bool
    signed_in: bool = Field(description="a session cookie (keys on) or open mode (keys off)")
    key_id: str | None
    scopes: list[str] = Field(description="with keys off: every scope (the API is open)")
    features: dict[str, bool] = Field(description="optional API parts present: cases, incidents")


class OverviewQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(28, ge=1, le=365, description="the period: this many days up to end")
    end: Timestamp | None = Field(None, description="default: the day after the newest comment")
    segment: SegmentField | None = None
    value: Name | None = None
    topics: int = Field(5, ge=1, le=12, description="the most frequent topics to chart")

    @model_validator(mode="after")
    def _pair(self) -> OverviewQuery:
        if (self.segment is None) != (self.value is None):
            raise ValueError("segment and value go together")
        return self


class SentimentPoint(BaseModel):
    start: datetime
    comments: int
    negative_share: float | None = Field(description="share of the bucket's comments predicted negative")


class BandPoint(BaseModel):
    start: datetime
    count: int
    expected: float | None
    low: float | None = Field(description="expected - 2 sqrt(expected) (Poisson), at least 0")
    high: float | None


class TopicTrend(BaseModel):
    topic_id: str
    label: str
    total: int
    points: list[BandPoint]
    change_points: list[ChangePointOut]
    spikes: list[SpikeOut]


class AlertMarker(BaseModel):
    id: str
    topic_id: str
    topic_label: str | None
    segment: str
    segment_value: str
    severity: str
    status: str
    peak_at: datetime
    observed: float
    baseline: float


class IncidentMarker(BaseModel):
    """An incident over the volume chart: a band over its window, its headline on hover."""

    id: str
    headline: str
    severity: str
    status: str
    segment: str
    segment_value: str
    topics: list[str]
    window_start: datetime
    window_end: datetime = Field(description="exclusive")
    owner: str | None
    overdue: bool


class OverviewOut(BaseModel):
    start: datetime
    end: datetime
    bucket: str
    segment: str | None
    value: str | None
    segments: dict[str, list[str]] = Field(description="known values per segment field, for the filters")
    topics: list[TopicTrend] = Field(description="empty without the alerts scope")
    alerts: list[AlertMarker] = Field(description="empty without the alerts scope")
    incidents: list[IncidentMarker] = Field(
        default_factory=list, description="incidents whose window meets the period; empty without alerts"
    )
    sentiment: list[SentimentPoint]
    nps: list[NpsGroup]
    needs: list[str] = Field(description="scopes whose sections were left out")
