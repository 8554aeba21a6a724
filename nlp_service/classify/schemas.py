"""Request and response models of ``POST /v1/classify``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, StringConstraints

MAX_TEXTS = 256
MAX_TEXT_CHARS = 10_000

Include = Literal["sentiment", "emotion", "topics", "sentences", "embedding"]
DEFAULT_INCLUDE: tuple[Include, ...] = ("sentiment", "emotion", "topics")


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text is empty or whitespace only")
    return text


CommentText = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(_not_blank)
]


class ClassifyRequest(BaseModel):
    """1-256 texts of 1-10,000 characters, and which analyses to return."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"texts": ["The delivery was late and support never answered my emails."]}]
        },
    )

    texts: list[CommentText] = Field(min_length=1, max_length=MAX_TEXTS)
    include: list[Include] = Field(
        default_factory=lambda: list(DEFAULT_INCLUDE),
        description="sentiment, emotion, topics, sentences, embedding (default: all but the last two)",
    )


class SentimentOut(BaseModel):
    label: Literal["negative", "neutral", "positive"]
    score: float = Field(description="P(positive) - P(negative), in [-1, 1]")
    probabilities: dict[str, float]


class EmotionLabel(BaseModel):
    label: str
    probability: float


class EmotionOut(BaseModel):
    labels: list[EmotionLabel] = Field(
        description="GoEmotions labels above their thresholds, most likely first"
    )
    probabilities: dict[str, float] = Field(description="All 28 GoEmotions labels")
    dominant: str = Field(description="The strongest of anger, fear, joy, sadness")
    intensity: float = Field(description="Overall intensity in [0, 1]: the intensity of the dominant emotion")
    intensities: dict[str, float] = Field(description="Intensity of anger, fear, joy and sadness, in [0, 1]")
    valence: float = Field(description="Pleasantness in [-1, 1]")
    arousal: float = Field(description="Activation in [0, 1]")


class TopicOut(BaseModel):
    id: str
    name: str
    score: float


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
