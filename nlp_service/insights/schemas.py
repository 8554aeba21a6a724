"""Query and response models of ``/v1/insights/*``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from nlp_service.comments.schemas import CommentFilter, SegmentFilter


class InsightQuery(SegmentFilter):
    """A time range (``start`` inclusive, ``end`` exclusive, both with a time zone) and optional filters."""

    def to_filter(self) -> CommentFilter:
        return CommentFilter.model_validate(self.model_dump(include=set(SegmentFilter.model_fields)))


class NpsQuery(InsightQuery):
    group_by: Literal["none", "region", "source", "touchpoint", "topic", "time"] = "none"
    bucket: Literal["hour", "day", "week", "month"] = Field(default="day", description="with group_by=time")


class Nps(BaseModel):
    nps: float | None = Field(description="% promoters (9-10) - % detractors (0-6); null without responses")
    responses: int
    promoters: int
    passives: int
    detractors: int


class NpsGroup(Nps):
    key: str


class NpsResponse(BaseModel):
    overall: Nps
    group_by: str
    bucket: str | None = None
    groups: list[NpsGroup]


class SentimentPoint(BaseModel):
    key: str = Field(description="bucket start (date, or hour)")
    comments: int
    negative_share: float
    positive_share: float
    mean_valence: float | None


class TopTopic(BaseModel):
    id: str
    count: int
    share: float


class TouchpointImpact(BaseModel):
    touchpoint: str | None
    comments: int
    share: float = Field(description="share of all comments in the range")
    mean_intensity: float | None = Field(description="mean emotional intensity in [0, 1]")
    mean_valence: float | None = Field(description="mean valence in [-1, 1]")
    negative_share: float
    nps: Nps
    top_topics: list[TopTopic]


class TouchpointsResponse(BaseModel):
    start: datetime | None
    end: datetime | None
    total_comments: int
    touchpoints: list[TouchpointImpact]
