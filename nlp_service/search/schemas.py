"""Request and response models of ``POST /v1/search``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nlp_service.comments.schemas import CommentFilter, CommentId
from nlp_service.inference.schemas import CommentText, TopicOut

MAX_K = 100


class SearchRequest(BaseModel):
    """Exactly one of ``query`` (free text) and ``comment_id`` (more like this stored comment)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"query": "charged tax on the sale price", "k": 10, "filters": {"region": "eu-west"}},
                {"query": "order ORD-88812", "mode": "hybrid"},
                {"comment_id": "survey-2024-000123", "k": 5},
            ]
        },
    )

    query: CommentText | None = None
    comment_id: CommentId | None = None
    k: int = Field(default=10, ge=1, le=MAX_K)
    mode: Literal["vector", "hybrid"] = Field(
        default="vector",
        description="vector: embeddings only; hybrid: BM25 keywords fused by reciprocal rank",
    )
    filters: CommentFilter = Field(default_factory=CommentFilter)

    @model_validator(mode="after")
    def _one_of(self) -> SearchRequest:
        if (self.query is None) == (self.comment_id is None):
            raise ValueError("give exactly one of 'query' and 'comment_id'")
        return self


class SearchHit(BaseModel):
    id: str
    text: str
    score: float = Field(description="cosine similarity (vector) or reciprocal-rank-fusion score (hybrid)")
    vector_score: float | None = None
    keyword_score: float | None = None
    created_at: datetime
    sentiment: str
    sentiment_score: float
    topics: list[TopicOut]
    source: str
    touchpoint: str | None = None
    region: str | None = None
    nps: int | None = None
    csat: float | None = None
    customer_id: str | None = None
    attributes: dict[str, str]


class SearchResponse(BaseModel):
    results: list[SearchHit]
    mode: str
    strategy: str = Field(
        description="filter_first (exact over matching comments) or index (ANN, over-fetched)"
    )
    capped: bool | None = Field(
        default=None,
        description="true when filters matched too few of the search_max_fetch nearest neighbours: fewer "
        "than k results (the best among those neighbours); absent otherwise",
    )
    index: dict[str, object]
    took_ms: float
