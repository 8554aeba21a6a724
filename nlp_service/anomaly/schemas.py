"""Request/response models of ``/v1/alerts``, ``/v1/detect`` and ``/v1/detect/series``."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nlp_service.anomaly.tables import AlertKind, AlertStatus, Bucket, Direction, Severity
from nlp_service.cases.lifecycle import Feedback
from nlp_service.cases.schemas import Owner
from nlp_service.comments.schemas import MAX_FILTER_VALUES, NameList
from nlp_service.jobs.schemas import JobStatus
from nlp_service.timestamps import Timestamp

StatusFilter = Literal["new", "acknowledged", "resolved", "closed", "open", "overdue"]
SegmentField = Literal["region", "touchpoint", "source"]
MAX_SERIES_POINTS = 20_000


# -- alerts ----------------------------------------------------------------------------------------------
class AlertsQuery(BaseModel):
    """Filters of ``GET /v1/alerts``; ``since``/``until`` bound the alert's window (overlap)."""

    model_config = ConfigDict(extra="forbid")

    status: list[StatusFilter] | None = Field(
        None,
        max_length=MAX_FILTER_VALUES,
        description="open = new or acknowledged (in progress); overdue = past the SLA of its step",
    )
    owner: list[Owner] | None = Field(
        None, max_length=MAX_FILTER_VALUES, description="assigned to one of these owners"
    )
    topic: NameList | None = None
    kind: list[AlertKind] | None = Field(None, max_length=MAX_FILTER_VALUES)
    severity: list[Severity] | None = Field(None, max_length=MAX_FILTER_VALUES)
    since: Timestamp | None = Field(None, description="window ends after this")
    until: Timestamp | None = Field(None, description="window starts before this")
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _range(self) -> AlertsQuery:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class RepresentativeComment(BaseModel):
    id: str
    text: str
    created_at: datetime
    region: str | None
    touchpoint: str | None
    source: str
    nps: int | None
    similarity: float = Field(description="cosine to the centroid of the episode's comments")


class AlertOut(BaseModel):
    id: str
    incident_id: str | None = Field(None, description="the incident this alert belongs to (null if none)")
    topic_id: str
    topic_label: str | None = None
    segment: str = Field(description='"all" or the segment field (region, touchpoint, source)')
    segment_value: str
    kind: AlertKind
    direction: Direction
    status: AlertStatus = Field(description="new | acknowledged (in progress) | resolved | closed")
    overdue: bool = Field(description="past the SLA of its step (see due_at)")
    due_at: datetime | None = Field(None, description="when the current step is due (null once closed)")
    owner: str | None = Field(None, description="a name or e-mail (free text)")
    feedback: Feedback | None = Field(None, description="useful | not_useful, from acknowledge/resolve")
    severity: Severity
    bucket: Bucket = Field(description="bucket size of the peak")
    window_start: datetime
    window_end: datetime = Field(description="exclusive")
    peak_at: datetime
    baseline: float = Field(description="expected comments in the peak bucket")
    observed: float = Field(description="observed comments in the peak bucket")
    score: float = Field(description="|z| (negative-binomial deviance residual) of the peak bucket")
    p_value: float | None
    buckets_fired: int
    revision: int
    explanation: dict[str, Any]
    representative_comments: list[RepresentativeComment] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None = None
    note: str | None = Field(description="the latest note")


class AlertPage(BaseModel):
    alerts: list[AlertOut]
    total: int
    limit: int
    offset: int


class FeedbackQuery(BaseModel):
    """Filters of ``GET /v1/alerts/feedback``: alerts created in ``[since, until)``, of these topics."""

    model_config = ConfigDict(extra="forbid")

    topic: NameList | None = None
    since: Timestamp | None = None
    until: Timestamp | None = None


class FeedbackCount(BaseModel):
    useful: int
    not_useful: int
    rated: int = Field(description="alerts with feedback")
    useful_share: float | None = Field(description="useful / rated (null when none rated)")


class FeedbackRow(FeedbackCount):
    topic_id: str
    topic_label: str | None = None
    kind: AlertKind


class FeedbackSummary(BaseModel):
    """Feedback per topic x detector kind (rated alerts only), and over all of them."""

    items: list[FeedbackRow]
    total: FeedbackCount


# -- detection -------------------------------------------------------------------------------------------
class DetectRequest(BaseModel):
    """Run detection now. ``at`` (default: now; never in the future) is the evaluation time: the completed
    buckets before it since the last run are checked; ``lookback_s`` widens that to every completed bucket
    ending within it (backfill; above ``detect_sync_max_lookback_s`` it runs as a background job)."""

    model_config = ConfigDict(extra="forbid")

    at: Timestamp | None = None
    lookback_s: int | None = Field(None, ge=0, le=90 * 86400)
    buckets: list[Bucket] | None = Field(None, min_length=1)


class DetectResponse(BaseModel):
    at: datetime
    series_scanned: int
    buckets_checked: int
    firings: int = Field(description="anomalous series-buckets found (before episode merging and dedup)")
    alerts_created: int
    alerts_updated: int
    alert_ids: list[str]
    incidents_created: int = 0
    incidents_updated: int = 0
    incidents_resolved: int = Field(0, description="resolved by themselves (quiet series; see incidents)")
    seconds: float
    skipped: str | None = Field(
        default=None, description="why nothing was scanned (a re-tag of the stored comments in progress)"
    )


class DetectJobProgress(BaseModel):
    done: int = Field(description="series scanned")
    total: int = Field(description="series to scan (0 until the series are loaded)")


class DetectJobOut(BaseModel):
    """A background detection run (``POST /v1/detect`` with a long ``lookback_s`` answers 202 with this)."""

    id: str
    status: JobStatus
    request: DetectRequest
    progress: DetectJobProgress
    result: DetectResponse | None = None
    error: str | None = None
    attempts: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class SeriesDetectRequest(BaseModel):
    """A series from another service: bucket starts (ISO 8601 with a time zone, or epoch seconds), values."""

    model_config = ConfigDict(extra="forbid")

    timestamps: list[Timestamp | float] = Field(max_length=MAX_SERIES_POINTS)
    values: list[float] = Field(max_length=MAX_SERIES_POINTS)
    bucket_seconds: int = Field(ge=60, le=31 * 86400)
    season_seconds: int | None = Field(
        None, ge=0, description="seasonal period; default a week (a day for buckets under a day); 0 = none"
    )
    p_threshold: float = Field(1e-4, gt=0, lt=0.5)
    min_count: float = Field(10.0, ge=0, description="minimum-volume guard")

    @model_validator(mode="after")
    def _check(self) -> SeriesDetectRequest:
        if len(self.timestamps) != len(self.values):
            raise ValueError(
                "timestamps and values must have equal lengths "
                f"({len(self.timestamps)} != {len(self.values)})"
            )
        for i, v in enumerate(self.values):
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"values[{i}] must be finite and non-negative, got {v}")
        secs = self.epoch_seconds()
        for i in range(1, len(secs)):
            if secs[i] <= secs[i - 1]:
                raise ValueError(f"timestamps must be strictly increasing (timestamps[{i}])")
            if (secs[i] - secs[0]) % self.bucket_seconds:
                raise ValueError(f"timestamps[{i}] is not on the bucket grid of the first timestamp")
        return self

    def epoch_seconds(self) -> list[int]:
        return [int(t.timestamp()) if isinstance(t, datetime) else int(t) for t in self.timestamps]


class ChangePointOut(BaseModel):
    index: int
    timestamp: datetime
    before_mean: float
    after_mean: float
    kind: Literal["level_up", "level_down"]


class SpikeOut(BaseModel):
    index: int
    timestamp: datetime
    observed: float
    expected: float
    score: float
    p_value: float
    kind: Literal["spike", "drop"]
    buckets: int = Field(
        1, description="buckets summed in observed and expected: more than 1 for a window ending at index"
    )


class EpisodeOut(BaseModel):
    start: datetime
    end: datetime = Field(description="start of the last anomalous bucket")
    peak: datetime
    peak_score: float
    kind: Literal["spike", "drop"]
    buckets: int


class SeriesDetectResponse(BaseModel):
    points: int
    bucket_seconds: int
    season_seconds: int | None
    expected: list[float | None] = Field(description="history-only baseline per bucket (null: no history)")
    change_points: list[ChangePointOut]
    spikes: list[SpikeOut]
    episodes: list[EpisodeOut]
