"""Request and response models of ``/v1/comments`` and the filters shared with search and insights."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from nlp_service.inference.schemas import CommentText, EmotionOut, SentimentOut, TopicOut
from nlp_service.timestamps import Timestamp

MAX_COMMENTS = 1000
MAX_ATTRIBUTES = 50
# Values in one "any of" filter list: far above any taxonomy or segment list, far below the database's
# bound-parameter limits (a 260,000-value list was a 500 on SQLite).
MAX_FILTER_VALUES = 200
# PostgreSQL text cannot hold NUL (it was a 500 there): stored strings are refused with it on every database
NUL_MESSAGE = "must not contain NUL characters (\\u0000)"

Name = Annotated[StrictStr, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
CommentId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
AttrKey = Annotated[StrictStr, StringConstraints(min_length=1, max_length=100)]
AttrValue = Annotated[StrictStr, StringConstraints(max_length=500)]
SentimentLabel = Literal["negative", "neutral", "positive"]
NameList = Annotated[list[Name], Field(max_length=MAX_FILTER_VALUES)]
SentimentList = Annotated[list[SentimentLabel], Field(max_length=MAX_FILTER_VALUES)]
# A comment holds at most MAX_ATTRIBUTES attributes, so more equality filters than that never match.
AttributeFilter = Annotated[dict[AttrKey, AttrValue], Field(max_length=MAX_ATTRIBUTES)]


class CommentIn(BaseModel):
    """One comment as the client sends it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "survey-2024-000123",
                    "text": "I was charged tax on the full price instead of the sale price.",
                    "created_at": "2024-03-12T09:30:00+01:00",
                    "source": "survey",
                    "touchpoint": "checkout",
                    "region": "eu-west",
                    "nps": 3,
                    "attributes": {"plan": "pro"},
                }
            ]
        },
    )

    id: CommentId = Field(description="The client's unique id of the comment (idempotency key)")
    text: CommentText
    created_at: Timestamp = Field(description="ISO 8601 with a time zone")
    source: Name = Field(description="survey, email, chat, review, social, ...")
    touchpoint: Name | None = None
    region: Name | None = None
    nps: int | None = Field(default=None, ge=0, le=10, strict=True)
    csat: float | None = Field(default=None, ge=0, le=10, description="Satisfaction score (e.g. 1-5)")
    customer_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=200)] | None = None
    attributes: dict[AttrKey, AttrValue] = Field(default_factory=dict, max_length=MAX_ATTRIBUTES)

    @field_validator("id", "text", "source", "touchpoint", "region", "customer_id")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError(NUL_MESSAGE)
        return value

    @field_validator("attributes")
    @classmethod
    def _no_nul_attributes(cls, value: dict[str, str]) -> dict[str, str]:
        if any("\x00" in k or "\x00" in v for k, v in value.items()):
            raise ValueError(NUL_MESSAGE)
        return value


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comments: list[CommentIn] = Field(min_length=1, max_length=MAX_COMMENTS)


class IngestItem(BaseModel):
    index: int
    id: str
    status: Literal["created", "existing"]


class IngestResponse(BaseModel):
    created: int
    existing: int
    results: list[IngestItem]


class AnalysisOut(BaseModel):
    sentiment: SentimentOut
    emotion: EmotionOut
    topics: list[TopicOut]
    truncated: bool
    model_versions: dict[str, str]


class CommentOut(BaseModel):
    id: str
    text: str
    created_at: datetime
    source: str
    touchpoint: str | None
    region: str | None
    nps: int | None
    csat: float | None
    customer_id: str | None
    attributes: dict[str, str]
    ingested_at: datetime
    analysis: AnalysisOut


class CommentPage(BaseModel):
    comments: list[CommentOut]
    next_cursor: str | None = Field(description="Pass as ``cursor`` to get the next page; null at the end")


def _listify(value: object) -> object:
    if isinstance(value, str):
        return [value]
    return value


class SegmentFilter(BaseModel):
    """The time range and segment filters every reader shares (the insights take these alone).

    Lists mean "any of"; all fields combine with AND.
    """

    model_config = ConfigDict(extra="forbid")

    start: Timestamp | None = Field(default=None, description="created_at >= start (with a time zone)")
    end: Timestamp | None = Field(default=None, description="created_at < end (with a time zone)")
    topic: NameList | None = None
    sentiment: SentimentList | None = None
    source: NameList | None = None
    touchpoint: NameList | None = None
    region: NameList | None = None

    @field_validator("topic", "sentiment", "source", "touchpoint", "region", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return _listify(value)

    @model_validator(mode="after")
    def _time_range(self) -> Self:
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class ScoredFilter(SegmentFilter):
    """Segment filters and an NPS range: the fields of :class:`CommentFilter` that query strings carry."""

    nps_min: int | None = Field(default=None, ge=0, le=10)
    nps_max: int | None = Field(default=None, ge=0, le=10)

    @model_validator(mode="after")
    def _nps_range(self) -> Self:
        if self.nps_min is not None and self.nps_max is not None and self.nps_min > self.nps_max:
            raise ValueError("nps_min must be <= nps_max")
        return self


class CommentFilter(ScoredFilter):
    """Filters shared by listing, search and insights. Lists mean "any of"; all fields combine with AND."""

    attributes: AttributeFilter | None = Field(default=None, description="attribute equality")

    def is_empty(self) -> bool:
        return not any(v not in (None, [], {}) for v in self.model_dump().values())


class ListQuery(ScoredFilter):
    """Query parameters of ``GET /v1/comments``; ``attr=key:value`` (repeatable) filters on attributes."""

    attr: list[Annotated[str, StringConstraints(pattern=r"^[^:]+:.*$")]] | None = Field(
        default=None, max_length=MAX_ATTRIBUTES, description="attribute filter 'key:value' (repeatable)"
    )
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = None

    def to_filter(self) -> CommentFilter:
        data = self.model_dump(exclude={"attr", "limit", "cursor"})
        if self.attr:
            data["attributes"] = dict(item.split(":", 1) for item in self.attr)
        return CommentFilter.model_validate(data)
