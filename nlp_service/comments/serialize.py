"""The one mapping of stored comments to what readers see: their public fields, their typed decoded result
(as ingest stored it), and the API's :class:`CommentOut` built from both."""

from __future__ import annotations

from typing import Any

from nlp_service.comments.schemas import AnalysisOut, CommentOut
from nlp_service.comments.tables import Comment, Prediction
from nlp_service.inference.results import Decoded, Emotion, EmotionScore, Sentiment, TopicScore
from nlp_service.inference.schemas import emotion_out, sentiment_out, topics_out


def comment_fields(comment: Comment) -> dict[str, Any]:
    """The client's fields of a stored comment, by the names every comment view uses."""
    return {
        "id": comment.id,
        "text": comment.text,
        "created_at": comment.created_at,
        "source": comment.source,
        "touchpoint": comment.touchpoint,
        "region": comment.region,
        "nps": comment.nps,
        "csat": comment.csat,
        "customer_id": comment.customer_id,
        "attributes": comment.attributes or {},
    }


def stored_topics(pred: Prediction) -> list[TopicScore]:
    return [TopicScore(**t) for t in pred.topics]


def stored_result(pred: Prediction) -> Decoded:
    """The decoded result a ``predictions`` row holds (the inverse of ``service.prediction_row``)."""
    return Decoded(
        sentiment=Sentiment(
            label=pred.sentiment_label, score=pred.sentiment_score, probabilities=pred.sentiment_probs
        ),
        emotion=Emotion(
            labels=[EmotionScore(**e) for e in pred.emotion_labels],
            probabilities=pred.emotion_probs,
            dominant=pred.dominant_emotion,
            intensity=pred.intensity,
            intensities=pred.intensities,
            valence=pred.valence,
            arousal=pred.arousal,
        ),
        topics=stored_topics(pred),
    )


def to_out(comment: Comment, pred: Prediction) -> CommentOut:
    """A stored comment with its analysis, as ``/v1/comments`` returns it."""
    decoded = stored_result(pred)
    return CommentOut(
        **comment_fields(comment),
        ingested_at=comment.ingested_at,
        analysis=AnalysisOut(
            sentiment=sentiment_out(decoded.sentiment),
            emotion=emotion_out(decoded.emotion),
            topics=topics_out(decoded.topics),
            truncated=pred.truncated,
            model_versions=pred.model_versions,
        ),
    )
