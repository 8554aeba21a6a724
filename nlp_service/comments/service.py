"""Comment storage: idempotent insert with predictions and topic counts, and deletion (reads: ``queries``).

Every function takes the session keyword-only and never commits (the caller owns the transaction).
Analysis happens before the write transaction; :func:`create_many` only writes.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.comments.embeddings import pack_sentences
from nlp_service.comments.schemas import CommentIn
from nlp_service.comments.tables import (
    Comment,
    CommentAttribute,
    CommentFeatures,
    CommentTerm,
    CommentTopic,
    Prediction,
)
from nlp_service.db import dialect_insert
from nlp_service.errors import Conflict, NotFound
from nlp_service.inference.engine import Analysis
from nlp_service.topics import service as topic_counts

CHUNK = 200  # rows per multi-row INSERT (keeps bound parameters far below SQLite/PostgreSQL limits)


# -- idempotency ---------------------------------------------------------------------------------------
def payload_hash(comment: CommentIn) -> str:
    """sha256 of the comment's canonical JSON (created_at in UTC, keys sorted)."""
    data = comment.model_dump(mode="python")
    data["created_at"] = comment.created_at.astimezone(UTC).isoformat()
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _conflict(items: list[tuple[int, str]]) -> Conflict:
    detail = [
        {
            "index": index,
            "field": f"comments[{index}].id",
            "message": f"comment {cid!r} already exists with a different payload",
            "type": "id_conflict",
        }
        for index, cid in items
    ]
    return Conflict(f"{len(items)} comment id(s) already exist with a different payload", detail=detail)


def find_known(*, db_session: Session, comments: Sequence[CommentIn], hashes: Sequence[str]) -> set[int]:
    """Indexes of comments already stored with the same payload; raises ``Conflict`` if a payload differs."""
    stored: dict[str, str] = {}
    ids = [c.id for c in comments]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = db_session.execute(select(Comment.id, Comment.payload_hash).where(Comment.id.in_(chunk)))
        stored.update((cid, digest) for cid, digest in rows)
    clashes = [(i, c.id) for i, c in enumerate(comments) if c.id in stored and stored[c.id] != hashes[i]]
    if clashes:
        raise _conflict(clashes)
    return {i for i, c in enumerate(comments) if c.id in stored}


# -- writing -------------------------------------------------------------------------------------------
@dataclass
class Created:
    """What one committed ingest added: for the vector index and keyword statistics."""

    row_ids: list[int] = field(default_factory=list)
    embeddings: list[np.ndarray] = field(default_factory=list)
    existing: set[int] = field(default_factory=set)  # request indexes found already stored


def prediction_row(analysis: Analysis) -> dict[str, Any]:
    """The ``predictions`` columns from one analysis's typed decoded result."""
    decoded = analysis.decoded
    sentiment, emotion = decoded.sentiment, decoded.emotion
    return {
        "sentiment_label": sentiment.label,
        "sentiment_score": sentiment.score,
        "sentiment_probs": sentiment.probabilities,
        "emotion_labels": [asdict(e) for e in emotion.labels],
        "emotion_probs": emotion.probabilities,
        "dominant_emotion": emotion.dominant,
        "intensity": emotion.intensity,
        "intensities": emotion.intensities,
        "valence": emotion.valence,
        "arousal": emotion.arousal,
        "topics": [asdict(t) for t in decoded.topics],
        "truncated": bool(analysis.truncated),
        "embedding": np.asarray(analysis.embedding, dtype=np.float32).tobytes(),
        "sentence_embeddings": pack_sentences(analysis.sentences),
        "model_versions": dict(analysis.models.versions),
        "encoder": analysis.models.versions.get("encoder"),
        "topics_version": topics_version(analysis.models.topics),
    }


def analysed_row(
    analysis: Analysis, segments: Mapping[str, str | None]
) -> tuple[dict[str, Any], dict[str, float]]:
    """A comment's ``predictions`` columns from its analysis, search-defined topics kept only where their
    filters pass (on ``segments`` and the sentiment), and its topics with their best score."""
    row = prediction_row(analysis)
    allows = getattr(analysis.models.topics, "allows", None)
    if allows is not None:  # search-defined topics count only comments their filters pass
        fields = {**segments, "sentiment": row["sentiment_label"]}
        row["topics"] = [t for t in row["topics"] if allows(t["id"], fields)]
    best: dict[str, float] = {}
    for t in row["topics"]:
        best[t["id"]] = max(best.get(t["id"], -1.0), t["score"])
    return row, best


def pack_features(analysis: Analysis) -> bytes:
    """A comment's stored head features: float16 (layers, dim)."""
    return np.asarray(analysis.features, dtype=np.float16).tobytes()


def topics_version(topics: Any) -> int | None:
    """The taxonomy version a topic model was built from (None: the shipped taxonomy file)."""
    version = getattr(topics, "version", None)
    return version if isinstance(version, int) else None


def create_many(
    *,
    db_session: Session,
    comments: Sequence[CommentIn],
    hashes: Sequence[str],
    analyses: Sequence[Analysis],
    terms: Sequence[Counter[str]],
) -> Created:
    """Insert comments with predictions, topics, attributes, terms and topic counts.

    Ids inserted concurrently by another transaction are detected through ``ON CONFLICT DO NOTHING``: same
    payload -> reported as existing, different payload -> ``Conflict`` (the caller rolls back everything).
    """
    now = datetime.now(UTC)
    order = sorted(range(len(comments)), key=lambda i: comments[i].id)  # fixed lock order
    row_of: dict[str, int] = {}
    for start in range(0, len(order), CHUNK):
        chunk = [comments[i] for i in order[start : start + CHUNK]]
        values = [
            {
                "id": c.id,
                "text": c.text,
                "created_at": c.created_at,
                "source": c.source,
                "touchpoint": c.touchpoint,
                "region": c.region,
                "nps": c.nps,
                "csat": c.csat,
                "customer_id": c.customer_id,
                "attributes": dict(c.attributes),
                "payload_hash": hashes[order[start + j]],
                "ingested_at": now,
            }
            for j, c in enumerate(chunk)
        ]
        stmt = (
            dialect_insert(db_session, Comment)
            .values(values)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(Comment.row_id, Comment.id)
        )
        row_of.update({cid: rid for rid, cid in db_session.execute(stmt)})

    created = Created()
    raced = [i for i, c in enumerate(comments) if c.id not in row_of]
    if raced:  # stored by a concurrent request since find_known()
        created.existing = find_known(
            db_session=db_session, comments=[comments[i] for i in raced], hashes=[hashes[i] for i in raced]
        )
        created.existing = {raced[j] for j in created.existing}

    predictions: list[dict[str, Any]] = []
    topics: list[dict[str, Any]] = []
    attributes: list[dict[str, Any]] = []
    postings: list[dict[str, Any]] = []
    features: list[dict[str, Any]] = []
    counts: dict[topic_counts.CountKey, list[int]] = defaultdict(lambda: [0, 0])
    for i, comment in enumerate(comments):
        row_id = row_of.get(comment.id)
        if row_id is None:
            continue
        analysis = analyses[i]
        segments = {"region": comment.region, "source": comment.source, "touchpoint": comment.touchpoint}
        row, best = analysed_row(analysis, segments)
        row["row_id"] = row_id
        row["n_terms"] = int(sum(terms[i].values()))
        predictions.append(row)
        if analysis.features is not None and analysis.feature_spec is not None:
            features.append(
                {"row_id": row_id, "spec": analysis.feature_spec, "features": pack_features(analysis)}
            )
        topics.extend({"row_id": row_id, "topic_id": tid, "score": score} for tid, score in best.items())
        attributes.extend({"row_id": row_id, "key": k, "value": v} for k, v in comment.attributes.items())
        postings.extend({"row_id": row_id, "term": t, "tf": n} for t, n in terms[i].items())
        negative = int(row["sentiment_label"] == "negative")
        for key in topic_counts.count_keys(list(best), comment.created_at, segments):
            counts[key][0] += 1
            counts[key][1] += negative
        created.row_ids.append(row_id)
        created.embeddings.append(np.asarray(analysis.embedding, dtype=np.float32))

    for table, rows in (
        (Prediction, predictions),
        (CommentTopic, topics),
        (CommentAttribute, attributes),
        (CommentTerm, postings),
        (CommentFeatures, features),
    ):
        for start in range(0, len(rows), CHUNK * 5):
            db_session.execute(dialect_insert(db_session, table), rows[start : start + CHUNK * 5])
    topic_counts.add_counts(db_session=db_session, counts=counts)
    db_session.flush()
    return created


def delete(*, db_session: Session, comment_id: str) -> int:
    """Delete a comment (and, by cascade, its predictions, topics, attributes, terms); decrement its topic
    counts. Returns its row id; ``NotFound`` if unknown."""
    row = db_session.execute(
        select(Comment, Prediction.sentiment_label)
        .join(Prediction, Prediction.row_id == Comment.row_id)
        .where(Comment.id == comment_id)
        .with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"comment {comment_id!r} not found", detail=[{"field": "id", "message": "unknown id"}])
    comment, label = row
    topic_ids = list(
        db_session.scalars(select(CommentTopic.topic_id).where(CommentTopic.row_id == comment.row_id))
    )
    negative = int(label == "negative")
    segments = {"region": comment.region, "source": comment.source, "touchpoint": comment.touchpoint}
    keys = topic_counts.count_keys(topic_ids, comment.created_at, segments)
    topic_counts.remove_counts(db_session=db_session, keys=keys, negative=negative)
    row_id = comment.row_id
    for table in (CommentTerm, CommentAttribute, CommentTopic, Prediction):  # explicit: SQLite FKs may be off
        db_session.execute(sa.delete(table).where(table.row_id == row_id))
    db_session.execute(sa.delete(Comment).where(Comment.row_id == row_id))
    db_session.flush()
    return row_id
