"""Request and response models of ``POST /v1/classify``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from nlp_service.inference.limits import DEFAULT_MAX_TEXTS
from nlp_service.inference.schemas import CommentText, EmotionOut, SentimentOut, TopicOut

Include = Literal["sentiment", "emotion", "topics", "sentences", "embedding"]
DEFAULT_INCLUDE: tuple[Include, ...] = ("sentiment", "emotion", "topics")


class ClassifyRequest(BaseModel):
    """1-256 texts of 1-10,000 characters (defaults of ``NLP_MAX_TEXTS_PER_REQUEST`` and
    ``NLP_MAX_TEXT_CHARS``), and which analyses to return."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"texts": ["The delivery was late and support never answered my emails."]}]
        },
    )

    texts: list[CommentText] = Field(min_length=1, json_schema_extra={"maxItems": DEFAULT_MAX_TEXTS})
    include: list[Include] = Field(
        default_factory=lambda: list(DEFAULT_INCLUDE),
        description="sentiment, emotion, topics, sentences, embedding (default: all but the last two)",
    )


class SentenceOut(BaseModel):
    text: str
    start: int
    end: int
    sentiment: SentimentOut | None = None
    emotion: EmotionOut | None = None
    topics: list[TopicOut] | None = None


class ClassifyResult(BaseModel):
    index: int
    truncated: bool = Field(description="True when the text was cut at the encoder's token limit")
    sentiment: SentimentOut | None = None
    emotion: EmotionOut | None = None
    topics: list[TopicOut] | None = None
    sentences: list[SentenceOut] | None = None
    embedding: list[float] | None = None


class ClassifyResponse(BaseModel):
    results: list[ClassifyResult]
    model_versions: dict[str, str]
