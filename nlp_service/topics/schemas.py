"""Query and response models of ``GET /v1/topics`` and ``GET /v1/topics/{id}/series``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nlp_service.anomaly.schemas import ChangePointOut, SegmentField, SpikeOut
from nlp_service.anomaly.tables import Bucket
from nlp_service.comments.schemas import Name
from nlp_service.timestamps import Timestamp


class TopicsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: Timestamp | None = None
    end: Timestamp | None = None


class TopicCountOut(BaseModel):
    id: str
    name: str
    description: str
    parent: str | None = Field(None, description="the parent topic of a sub-topic (its hits count there too)")
    count: int
    negative: int
    share: float = Field(description="count / comments in the range (a comment can have several topics)")


class TopicsResponse(BaseModel):
    taxonomy: dict[str, str]
    start: datetime | None
    end: datetime | None
    total_comments: int
    topics: list[TopicCountOut]


class SeriesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket: Bucket = "day"
    segment: SegmentField | None = Field(None, description="with value: one segment's series")
    value: Name | None = None
    since: Timestamp | None = Field(None, description="default: the detector's history before until")
    until: Timestamp | None = Field(None, description="default: end of the current bucket")

    @model_validator(mode="after")
    def _check(self) -> SeriesQuery:
        if (self.segment is None) != (self.value is None):
            raise ValueError("segment and value go together")
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class SeriesPoint(BaseModel):
    start: datetime
    count: int
    total: int = Field(description="all comments in the bucket (in the segment, if any)")
    share: float | None = Field(description="count / total")
    expected: float | None = Field(description="history-only seasonal baseline")


class TopicSeriesResponse(BaseModel):
    topic_id: str
    bucket: Bucket
    segment: str
    segment_value: str
    since: datetime
    until: datetime
    points: list[SeriesPoint]
    change_points: list[ChangePointOut]
    spikes: list[SpikeOut]
    alerts: list[str] = Field(description="ids of alerts of this topic overlapping the range")
