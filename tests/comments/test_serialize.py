"""Storage consumes the typed decoded result; readers map stored rows back through one mapper."""

from __future__ import annotations

from datetime import UTC, datetime

from nlp_service.classify.service import build_result
from nlp_service.comments.serialize import comment_fields, stored_result, to_out
from nlp_service.comments.service import prediction_row
from nlp_service.comments.tables import Comment, Prediction
from tests.conftest import FakeEngine

TEXT = "I was charged twice and the delivery was late, terrible support"


def stored(text: str) -> tuple[Comment, Prediction]:
    analysis = FakeEngine().analyze([text])[0]
    when = datetime(2024, 3, 1, tzinfo=UTC)
    comment = Comment(
        row_id=1,
        id="c1",
        text=text,
        created_at=when,
        source="survey",
        touchpoint=None,
        region="eu",
        nps=3,
        csat=None,
        customer_id="k9",
        attributes={"plan": "pro"},
        payload_hash="0" * 64,
        ingested_at=when,
    )
    return comment, Prediction(row_id=1, n_terms=3, **prediction_row(analysis))


def test_stored_row_holds_the_decoded_result() -> None:
    analysis = FakeEngine().analyze([TEXT])[0]
    _, pred = stored(TEXT)
    assert stored_result(pred) == analysis.decoded


def test_comment_out_shows_what_classify_shows() -> None:
    analysis = FakeEngine().analyze([TEXT])[0]
    comment, pred = stored(TEXT)
    out = to_out(comment, pred)
    classified = build_result(0, analysis, ("sentiment", "emotion", "topics"))
    assert out.analysis.sentiment == classified.sentiment
    assert out.analysis.emotion == classified.emotion
    assert out.analysis.topics == classified.topics
    assert out.model_dump(include=set(comment_fields(comment))) == comment_fields(comment)
