"""Key phrases of an alert: the terms (spaCy lemmas and noun chunks, ``topics.keywords``) that over-index in
the comments of the alert's window against those of its baseline period, for the alert's topic (and segment).

Both sides are capped at :data:`MAX_PHRASE_COMMENTS` comments, spread evenly over their period, so an alert
costs one bounded spaCy pass however busy the topic is. That pass is most of a detection run's write phase
(the demo's six alerts: 4.4 of 5.1 s), so a run computes the phrases of the alerts it will explain in its
read phase, into a :class:`PhraseCache` that the write phase looks them up in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.comments.queries import filter_conditions
from nlp_service.comments.schemas import CommentFilter
from nlp_service.comments.tables import Comment, Prediction
from nlp_service.topics.keywords import KeyPhrase, extract_terms, key_phrases

MAX_PHRASE_COMMENTS = 200  # comments parsed per side (window, baseline)
MAX_KEY_PHRASES = 8
MIN_BASELINE_COMMENTS = 30


def sample_texts(db_session: Session, filters: CommentFilter, limit: int = MAX_PHRASE_COMMENTS) -> list[str]:
    """Texts of at most ``limit`` comments matching ``filters``, evenly spaced in time order (ids are read
    first, so only the sampled texts are loaded)."""
    ids = list(
        db_session.scalars(
            select(Comment.row_id)
            .join(Prediction, Prediction.row_id == Comment.row_id)
            .where(*filter_conditions(filters))
            .order_by(Comment.created_at, Comment.row_id)
        )
    )
    if len(ids) > limit:
        ids = [ids[i * len(ids) // limit] for i in range(limit)]
    if not ids:
        return []
    rows = db_session.execute(select(Comment.row_id, Comment.text).where(Comment.row_id.in_(ids)))
    texts = {row_id: text for row_id, text in rows.tuples()}
    return [texts[i] for i in ids if i in texts]


def alert_key_phrases(
    db_session: Session,
    spacy_model: str,
    window: CommentFilter,
    baseline: CommentFilter,
    fallback: CommentFilter | None = None,
) -> list[KeyPhrase]:
    """The key phrases of the comments matching ``window`` against those matching ``baseline``, best first.
    A baseline of fewer than :data:`MIN_BASELINE_COMMENTS` (a segment that is usually quiet) is replaced by
    ``fallback`` (the topic's comments in all segments): too few comments contrast nothing."""
    win = sample_texts(db_session, window)
    if not win:
        return []
    base = sample_texts(db_session, baseline)
    if len(base) < MIN_BASELINE_COMMENTS and fallback is not None:
        base = sample_texts(db_session, fallback)
    if not base:
        return []
    terms = extract_terms(win + base, spacy_model)
    return key_phrases(terms[: len(win)], terms[len(win) :], k=MAX_KEY_PHRASES)


@dataclass
class PhraseCache:
    """Key phrases by their inputs (spaCy model, window, baseline, fallback), each computed once."""

    found: dict[tuple[str, str, str, str], list[KeyPhrase]] = field(default_factory=dict)

    def get(
        self,
        db_session: Session,
        spacy_model: str,
        window: CommentFilter,
        baseline: CommentFilter,
        fallback: CommentFilter | None = None,
    ) -> list[KeyPhrase]:
        """:func:`alert_key_phrases` of these inputs, computed on the first call only."""
        key = (
            spacy_model,
            window.model_dump_json(),
            baseline.model_dump_json(),
            "" if fallback is None else fallback.model_dump_json(),
        )
        if key not in self.found:
            self.found[key] = alert_key_phrases(db_session, spacy_model, window, baseline, fallback)
        return self.found[key]
