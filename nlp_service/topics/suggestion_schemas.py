"""Request/response models of ``GET /v1/topics/suggestions`` and ``POST /v1/topics/suggestions/refresh``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from nlp_service.anomaly.schemas import RepresentativeComment
from nlp_service.timestamps import Timestamp

SuggestionStatus = Literal["open", "superseded", "accepted"]
MAX_WINDOW_S = 90 * 86400


def _open() -> list[SuggestionStatus]:
    return ["open"]


class SuggestionsQuery(BaseModel):
    """Filters of ``GET /v1/topics/suggestions``; ``start``/``end`` bound the suggestions' windows."""

    model_config = ConfigDict(extra="forbid")

    status: list[SuggestionStatus] = Field(default_factory=_open, max_length=3)
    start: Timestamp | None = Field(None, description="window ends after this")
    end: Timestamp | None = Field(None, description="window starts before this")
    limit: int = Field(50, ge=1, le=500)

    @model_validator(mode="after")
    def _range(self) -> SuggestionsQuery:
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class SuggestionOut(BaseModel):
    id: str
    status: SuggestionStatus
    window_start: datetime
    window_end: datetime = Field(description="exclusive")
    previous_window_start: datetime = Field(description="the previous window is [this, window_start)")
    size: float = Field(
        description="unclaimed comments of the window in this cluster (scaled up when sampled)"
    )
    sampled: int = Field(description="members among the clustered sample")
    previous_size: float = Field(description="previous-window comments within the cluster's radius")
    growth: float = Field(description="(size + 1) / (previous_size + 1)")
    mean_sentiment: float | None = Field(description="mean P(positive) - P(negative), in [-1, 1]")
    negative_share: float | None
    keywords: list[str] = Field(description="class-based TF-IDF over lemmas and noun chunks, best first")
    representatives: list[RepresentativeComment] = Field(description="the comments nearest the centroid")
    alert_id: str | None = Field(description="its emerging_topic alert, if it raised or continues one")
    topic_id: str | None = Field(description="the topic it became (accepted)")
    created_at: datetime


class SuggestionsResponse(BaseModel):
    suggestions: list[SuggestionOut]


class RefreshRequest(BaseModel):
    """Run discovery now over the window ending at ``at`` (default now; never in the future)."""

    model_config = ConfigDict(extra="forbid")

    at: Timestamp | None = None
    window_s: int | None = Field(None, ge=3600, le=MAX_WINDOW_S, description="default discovery_window_s")


class RefreshResponse(BaseModel):
    at: datetime
    window_start: datetime
    previous_window_start: datetime
    unclaimed: int = Field(description="comments of the window no topic claims")
    sampled: int = Field(description="of which were clustered (at most discovery_sample_cap)")
    previous_unclaimed: int
    clusters: int
    alerts_created: list[str]
    suggestions: list[SuggestionOut]
    seconds: float


class AcceptRequest(BaseModel):
    """Optional id and name of the topic a suggestion becomes (default: derived from its keywords)."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=100)] | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
