"""Seeded stored comments with clustered embeddings, for the re-tag tests and benchmark (no encoder).

Comments lie around ``k`` random unit centers; a topic of a synthetic taxonomy is described by a center
(description ``"cluster <i>"``, embedded by :func:`center_embed`), so which comments a taxonomy tags, and
how a new taxonomy moves them, is known. :func:`store_comments` writes comments, predictions, comment
topics and topic counts straight into the database the way ingest does; :func:`recount` recomputes the
counts from the comments, to check the maintained ones against.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from nlp_service.comments.embeddings import pack_sentences
from nlp_service.comments.tables import Comment, CommentFeatures, CommentTopic, Prediction
from nlp_service.timestamps import utcnow
from nlp_service.topics.model import TopicModel
from nlp_service.topics.scorer import Embed
from nlp_service.topics.service import CountKey, add_counts, count_keys
from nlp_service.topics.tables import TaxonomyVersion, TopicCount
from nlp_service.topics.taxonomy import Taxonomy, Topic

DIM = 384
SOURCES = ("survey", "app_review", "email")
REGIONS = ("eu-west", "us-east", None)
TOUCHPOINTS = ("checkout", "delivery", None)
SENTIMENTS = ("negative", "neutral", "positive")
CHUNK = 1000


def centers(k: int, *, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """``k`` random unit vectors (nearly orthogonal in high dimension)."""
    c = np.random.default_rng(seed).standard_normal((k, dim)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def clustered(
    labels: Sequence[int] | np.ndarray, c: np.ndarray, *, noise: float = 0.5, seed: int = 1
) -> np.ndarray:
    """Unit embeddings around ``c[label]``: cosine to their own center about ``1 / sqrt(1 + noise**2)``."""
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((len(labels), c.shape[1])).astype(np.float32)
    n *= noise / np.linalg.norm(n, axis=1, keepdims=True)
    x = c[np.asarray(labels, dtype=np.int64)] + n
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def taxonomy(topics: Mapping[str, int], *, name: str = "synthetic", threshold: float = 0.5) -> Taxonomy:
    """A taxonomy whose topic ``id`` covers the comments of cluster ``topics[id]``."""
    return Taxonomy(
        tuple(Topic(tid, tid.replace("_", " ").title(), f"cluster {k}") for tid, k in topics.items()),
        name=name,
        default_threshold=threshold,
    )


def center_embed(c: np.ndarray) -> Embed:
    """An embedding function mapping ``"cluster <i>"`` to ``c[i]``."""

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([c[int(t.rsplit(" ", 1)[1])] for t in texts]) if texts else np.zeros((0, c.shape[1]))

    return embed


def store_version(
    *, db_session: Session, tax: Taxonomy, c: np.ndarray, now: datetime | None = None
) -> tuple[TaxonomyVersion, TopicModel]:
    """Store a taxonomy version with its built model; returns the row and the model (``version`` set)."""
    row = TaxonomyVersion(
        parent_id=None,
        definition=tax.to_dict(),
        change="synthetic",
        created_by=None,
        created_at=now or utcnow(),
        quality={},
        model=None,
        model_key="synthetic",
    )
    db_session.add(row)
    db_session.flush()
    versioned = Taxonomy(tax.topics, tax.name, str(row.id), tax.default_threshold)
    model = TopicModel.build(versioned, center_embed(c), version=row.id, key="synthetic")
    row.model = model.to_bytes()
    db_session.flush()
    return row, model


def store_comments(
    *,
    db_session: Session,
    embeddings: np.ndarray,
    model: TopicModel,
    start: datetime,
    span: timedelta,
    sentences: Sequence[np.ndarray | None] | None = None,
    prefix: str = "c",
    seed: int = 2,
) -> list[int]:
    """Store one comment per embedding, created evenly over ``[start, start + span)``, tagged by ``model``
    (``topics_version = model.version``) with their topic counts, as ingest stores them. Returns row ids."""
    rng = np.random.default_rng(seed)
    n = len(embeddings)
    sentences = list(sentences) if sentences is not None else [None] * n
    hits = model.predict(embeddings, sentences=sentences)
    now = utcnow()
    row_ids: list[int] = []
    counts: dict[CountKey, list[int]] = defaultdict(lambda: [0, 0])
    step = span / max(n, 1)
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        comments: list[dict[str, Any]] = []
        for i in range(lo, hi):
            comments.append(
                {
                    "id": f"{prefix}{i}",
                    "text": f"synthetic comment {i}",
                    "created_at": start + step * i,
                    "source": SOURCES[rng.integers(len(SOURCES))],
                    "touchpoint": TOUCHPOINTS[rng.integers(len(TOUCHPOINTS))],
                    "region": REGIONS[rng.integers(len(REGIONS))],
                    "attributes": {},
                    "payload_hash": "0" * 64,
                    "ingested_at": now,
                }
            )
        db_session.execute(insert(_table(Comment)), comments)
        stored = db_session.execute(
            select(Comment.id, Comment.row_id).where(Comment.id.in_([c["id"] for c in comments]))
        )
        ids = {cid: rid for cid, rid in stored}
        predictions: list[dict[str, Any]] = []
        topics: list[dict[str, Any]] = []
        for j, c in enumerate(comments):
            i, rid = lo + j, ids[c["id"]]
            label = SENTIMENTS[rng.integers(len(SENTIMENTS))]
            predictions.append(_prediction(rid, label, embeddings[i], sentences[i], hits[i], model.version))
            topics.extend({"row_id": rid, "topic_id": h.id, "score": h.score} for h in hits[i])
            segments = {"region": c["region"], "source": c["source"], "touchpoint": c["touchpoint"]}
            for key in count_keys([h.id for h in hits[i]], c["created_at"], segments):
                counts[key][0] += 1
                counts[key][1] += int(label == "negative")
            row_ids.append(rid)
        db_session.execute(insert(_table(Prediction)), predictions)
        if topics:
            db_session.execute(insert(_table(CommentTopic)), topics)
    add_counts(db_session=db_session, counts=counts)
    db_session.flush()
    return row_ids


def _table(entity: Any) -> Table:
    """The Core table of an ORM class: plain ``executemany`` inserts (no ORM bulk bookkeeping)."""
    return cast(Table, entity.__table__)


def _prediction(
    rid: int, label: str, embedding: np.ndarray, sentences: np.ndarray | None, hits: Any, version: int | None
) -> dict[str, Any]:
    return {
        "row_id": rid,
        "sentiment_label": label,
        "sentiment_score": 0.9,
        "sentiment_probs": {label: 0.9},
        "emotion_labels": [],
        "emotion_probs": {},
        "dominant_emotion": "neutral",
        "intensity": 0.0,
        "intensities": {},
        "valence": 0.0,
        "arousal": 0.0,
        "topics": [asdict(h) for h in hits],
        "truncated": False,
        "n_terms": 0,
        "embedding": np.asarray(embedding, dtype=np.float32).tobytes(),
        "model_versions": {"topics": str(version)},
        "topics_version": version,
        "sentence_embeddings": pack_sentences(sentences),
    }


def recount(*, db_session: Session) -> dict[CountKey, tuple[int, int]]:
    """Topic counts recomputed from scratch from the stored comments and their ``comment_topics``."""
    topics: dict[int, list[str]] = defaultdict(list)
    for rid, tid in db_session.execute(select(CommentTopic.row_id, CommentTopic.topic_id)):
        topics[rid].append(tid)
    counts: dict[CountKey, list[int]] = defaultdict(lambda: [0, 0])
    rows = db_session.execute(
        select(
            Comment.row_id,
            Comment.created_at,
            Comment.source,
            Comment.touchpoint,
            Comment.region,
            Prediction.sentiment_label,
        ).join(Prediction, Prediction.row_id == Comment.row_id)
    )
    for rid, created_at, source, touchpoint, region, label in rows:
        segments = {"region": region, "source": source, "touchpoint": touchpoint}
        for key in count_keys(topics.get(rid, []), created_at, segments):
            counts[key][0] += 1
            counts[key][1] += int(label == "negative")
    return {k: (n, neg) for k, (n, neg) in counts.items()}


def stored_counts(*, db_session: Session) -> dict[CountKey, tuple[int, int]]:
    """The maintained topic counts, without series at zero."""
    out: dict[CountKey, tuple[int, int]] = {}
    for r in db_session.scalars(select(TopicCount)):
        if r.count or r.negative:
            out[(r.topic_id, r.bucket, r.bucket_start, r.segment, r.segment_value)] = (r.count, r.negative)
    return out


def store_features(
    *, db_session: Session, row_ids: Sequence[int], spec: str, shape: tuple[int, int], seed: int = 0
) -> np.ndarray:
    """Store random head features (float16, ``shape`` = (layers, dim)) for ``row_ids``; returns them."""
    rng = np.random.default_rng(seed)
    feats = (rng.standard_normal((len(row_ids), *shape)) * 0.3).astype(np.float16)
    rows = [
        {"row_id": int(r), "spec": spec, "features": f.tobytes()} for r, f in zip(row_ids, feats, strict=True)
    ]
    for start in range(0, len(rows), 2000):
        db_session.execute(insert(_table(CommentFeatures)), rows[start : start + 2000])
    return feats
