"""Public views of the decoded results, shared by the classify, comments and search responses.

The pydantic models here are API schemas; the ``*_out`` functions build them from the typed results of
:mod:`nlp_service.inference.results`, at the edge (classify's service, the comments serialiser).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictStr, StringConstraints

from nlp_service.inference.limits import DEFAULT_MAX_TEXT_CHARS
from nlp_service.inference.results import Emotion, Sentiment, TopicScore


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text is empty or whitespace only")
    return text


# The length limit is NLP_MAX_TEXT_CHARS, checked by the views (``inference.limits``); the default documented
CommentText = Annotated[
    StrictStr,
    StringConstraints(min_length=1),
    AfterValidator(_not_blank),
    Field(json_schema_extra={"maxLength": DEFAULT_MAX_TEXT_CHARS}),
]


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


def sentiment_out(sentiment: Sentiment) -> SentimentOut:
    # validated: the label is a plain str in the typed result, a Literal here
    return SentimentOut.model_validate(
        {"label": sentiment.label, "score": sentiment.score, "probabilities": sentiment.probabilities}
    )


def emotion_out(emotion: Emotion) -> EmotionOut:
    return EmotionOut(
        labels=[EmotionLabel(label=e.label, probability=e.probability) for e in emotion.labels],
        probabilities=emotion.probabilities,
        dominant=emotion.dominant,
        intensity=emotion.intensity,
        intensities=emotion.intensities,
        valence=emotion.valence,
        arousal=emotion.arousal,
    )


def topics_out(topics: Sequence[TopicScore]) -> list[TopicOut]:
    return [TopicOut(id=t.id, name=t.name, score=t.score) for t in topics]
