"""Typed decoded results: what the heads' arrays mean for one text, decoded once for every consumer.

:func:`decode` is the one decode path: the sentiment head's argmax, the emotion head's thresholds (most likely
first), intensity, valence/arousal and the topic hits, rounded to 4 decimals. ``/v1/classify`` serialises
these results, ingest stores them; neither reads the raw arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from nlp_service.inference.heads import indexes_over, top_index


class LabelledHead(Protocol):
    """What decoding needs of a head: its output labels and (sigmoid heads) per-label thresholds."""

    @property
    def labels(self) -> list[str]: ...

    @property
    def thresholds(self) -> list[float] | None: ...


class ScoredTopic(Protocol):
    """A topic hit as the topic scorer returns it."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def score(self) -> float: ...


@dataclass(frozen=True)
class Sentiment:
    label: str
    score: float  # P(positive) - P(negative)
    probabilities: dict[str, float]


@dataclass(frozen=True)
class EmotionScore:
    label: str
    probability: float


@dataclass(frozen=True)
class Emotion:
    labels: list[EmotionScore]  # over their thresholds, most likely first
    probabilities: dict[str, float]
    dominant: str  # the strongest of the intensity head's emotions
    intensity: float
    intensities: dict[str, float]
    valence: float
    arousal: float


@dataclass(frozen=True)
class TopicScore:
    id: str
    name: str
    score: float


@dataclass(frozen=True)
class Decoded:
    """One text's decoded analysis."""

    sentiment: Sentiment
    emotion: Emotion
    topics: list[TopicScore]


def _r(x: Any) -> float:
    return round(float(x), 4)


def decode_sentiment(head: LabelledHead, probs: np.ndarray) -> Sentiment:
    by_label = {label: _r(p) for label, p in zip(head.labels, probs, strict=True)}
    score = float(by_label.get("positive", 0.0) - by_label.get("negative", 0.0))
    return Sentiment(label=head.labels[top_index(probs)], score=_r(score), probabilities=by_label)


def decode_emotion(heads: Mapping[str, LabelledHead], outputs: Mapping[str, np.ndarray]) -> Emotion:
    emotion_head, probs = heads["emotion"], outputs["emotion"]
    intensities = {
        label: _r(np.clip(v, 0.0, 1.0))
        for label, v in zip(heads["intensity"].labels, outputs["intensity"], strict=True)
    }
    dominant = max(intensities, key=lambda k: intensities[k])
    va = dict(zip(heads["valence"].labels, outputs["valence"], strict=True))
    return Emotion(
        labels=[
            EmotionScore(label=emotion_head.labels[i], probability=_r(probs[i]))
            for i in indexes_over(probs, emotion_head.thresholds)
        ],
        probabilities={label: _r(p) for label, p in zip(emotion_head.labels, probs, strict=True)},
        dominant=dominant,
        intensity=intensities[dominant],
        intensities=intensities,
        valence=_r(np.clip(va["valence"], -1.0, 1.0)),
        arousal=_r(np.clip(va["arousal"], 0.0, 1.0)),
    )


def decode_topics(hits: Sequence[ScoredTopic]) -> list[TopicScore]:
    return [TopicScore(id=hit.id, name=hit.name, score=_r(hit.score)) for hit in hits]


def decode(
    heads: Mapping[str, LabelledHead], outputs: Mapping[str, np.ndarray], hits: Sequence[ScoredTopic]
) -> Decoded:
    """Every head's output for one text (``outputs[task]``, one row) and its topic hits, decoded."""
    return Decoded(
        sentiment=decode_sentiment(heads["sentiment"], outputs["sentiment"]),
        emotion=decode_emotion(heads, outputs),
        topics=decode_topics(hits),
    )


def decode_heads_batch(
    heads: Mapping[str, LabelledHead], outputs: Mapping[str, np.ndarray]
) -> list[dict[str, Any]]:
    """The sentiment and emotion fields of :func:`decode` (as the ``predictions`` columns) for a batch of
    rows at once (``outputs[task]``: (n, labels)); equal to decoding each row, about 10x faster."""

    def rounded(values: np.ndarray) -> list[list[float]]:
        return [[round(v, 4) for v in row] for row in np.asarray(values, dtype=np.float64).tolist()]

    s_labels = heads["sentiment"].labels
    sentiment = rounded(outputs["sentiment"])
    s_top = np.argmax(outputs["sentiment"], axis=1).tolist()
    e_head = heads["emotion"]
    e_labels, e_probs = e_head.labels, np.asarray(outputs["emotion"])
    thr = np.asarray(e_head.thresholds if e_head.thresholds is not None else [0.5] * len(e_labels))
    order = np.argsort(-e_probs, axis=1, kind="quicksort").tolist()
    over = (e_probs >= thr).tolist()
    emotion = rounded(e_probs)
    i_labels = heads["intensity"].labels
    intensity = rounded(np.clip(outputs["intensity"], 0.0, 1.0))
    va_labels = heads["valence"].labels
    va = np.asarray(outputs["valence"])
    valence = np.clip(va[:, va_labels.index("valence")], -1.0, 1.0).tolist()
    arousal = np.clip(va[:, va_labels.index("arousal")], 0.0, 1.0).tolist()
    rows = []
    for i, probs in enumerate(sentiment):
        by_label = dict(zip(s_labels, probs, strict=True))
        intensities = dict(zip(i_labels, intensity[i], strict=True))
        dominant = max(intensities, key=lambda k: intensities[k])
        rows.append(
            {
                "sentiment_label": s_labels[s_top[i]],
                "sentiment_score": round(by_label.get("positive", 0.0) - by_label.get("negative", 0.0), 4),
                "sentiment_probs": by_label,
                "emotion_labels": [
                    {"label": e_labels[j], "probability": emotion[i][j]} for j in order[i] if over[i][j]
                ],
                "emotion_probs": dict(zip(e_labels, emotion[i], strict=True)),
                "dominant_emotion": dominant,
                "intensity": intensities[dominant],
                "intensities": intensities,
                "valence": round(valence[i], 4),
                "arousal": round(arousal[i], 4),
            }
        )
    return rows
