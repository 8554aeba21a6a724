"""Topic suggestions: clusters of the comments that no topic claims, found in a window (topic discovery).

**Scan** (:func:`scan`, reads only). The window is ``[at - window_s, at)``; a comment is *unclaimed* when no
topic scored it ``discovery_weak_score`` or more (``comment_topics``). At most ``discovery_sample_cap``
unclaimed comments (a seeded sample) are clustered by ``topics.discovery`` (k by silhouette, then clusters
with near-identical centres merged: the number of clusters comes from the data). Per cluster of at least
``discovery_min_cluster_size`` sampled comments:

- ``keywords``: class-based TF-IDF over lemmas and noun chunks (``topics.keywords``), against a background of
  the window's claimed and unclustered comments;
- ``representatives``: the comments nearest the centroid (``anomaly.explain.representatives``);
- ``size``: members, scaled by unclaimed / sampled; ``previous_size``: the previous window's (same length,
  just before) unclaimed comments whose nearest centroid is this cluster's, within its ``radius`` (the cosine
  to the centroid that 90% of members reach), scaled likewise; ``growth``: (size + 1) / (previous size + 1);
- ``mean_sentiment``: mean P(positive) - P(negative) of the members, and their negative share.

**Store** (:func:`replace_open`): the new suggestions replace the previous run's open ones. Deterministic: the
same data, settings and seed give the same suggestions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.orm import Session

from nlp_service.anomaly.explain import representatives
from nlp_service.anomaly.schemas import RepresentativeComment
from nlp_service.comments.serialize import comment_fields
from nlp_service.comments.tables import Comment, CommentTopic, Prediction
from nlp_service.config import Settings
from nlp_service.errors import Conflict, NotFound
from nlp_service.topics.discovery import find_themes
from nlp_service.topics.keywords import class_counts, extract_terms, top_keywords
from nlp_service.topics.suggestion_schemas import SuggestionOut, SuggestionsQuery
from nlp_service.topics.tables import TopicSuggestion
from nlp_service.topics.vectors import normalise

BACKGROUND_CAP = 300  # claimed comments read as the keywords' background class
RADIUS_QUANTILE = 0.1  # radius: the cosine to the centroid that 90% of a cluster's members reach
CHUNK = 1000


@dataclass(frozen=True)
class Found:
    """One suggestion as found by a scan (not stored yet)."""

    centroid: np.ndarray
    radius: float
    size: float
    sampled: int
    previous_size: float
    growth: float
    mean_sentiment: float | None
    negative_share: float | None
    keywords: list[str]
    representatives: list[tuple[int, float]]  # (row id, cosine to the centroid)


@dataclass
class Scan:
    """What a scan found: the windows, how many comments were unclaimed and clustered, and the clusters."""

    at: datetime
    window_start: datetime
    previous_start: datetime
    unclaimed: int
    sampled: int
    previous_unclaimed: int
    k: int
    found: list[Found] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Rows:
    row_ids: np.ndarray
    texts: list[str]
    embeddings: np.ndarray
    sentiment: np.ndarray  # P(positive) - P(negative)
    negative: np.ndarray  # bool


def _claimed(weak: float) -> ColumnElement[bool]:
    return exists().where(CommentTopic.row_id == Comment.row_id, CommentTopic.score >= weak)


def _row_ids(
    db_session: Session, start: datetime, end: datetime, *, claimed: bool, weak: float
) -> np.ndarray:
    cond = _claimed(weak)
    stmt = (
        select(Comment.row_id)
        .where(Comment.created_at >= start, Comment.created_at < end, cond if claimed else ~cond)
        .order_by(Comment.row_id)
    )
    return np.fromiter(db_session.scalars(stmt), dtype=np.int64)


def _sample(ids: np.ndarray, cap: int, seed: int) -> np.ndarray:
    if len(ids) <= cap:
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=cap, replace=False))


def _read(db_session: Session, row_ids: Sequence[int] | np.ndarray, *, texts: bool = True) -> _Rows:
    """Texts, embeddings and sentiment of ``row_ids`` (ordered by row id)."""
    out: list[tuple[int, str, np.ndarray, float, str]] = []
    ids = [int(r) for r in row_ids]
    text_col = Comment.text if texts else Comment.id
    stmt = select(
        Prediction.row_id,
        text_col,
        Prediction.embedding,
        Prediction.sentiment_score,
        Prediction.sentiment_label,
    ).join(Comment, Comment.row_id == Prediction.row_id)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for rid, text, blob, score, label in db_session.execute(stmt.where(Prediction.row_id.in_(chunk))):
            out.append((rid, text if texts else "", np.frombuffer(blob, dtype=np.float32), score, label))
    out.sort(key=lambda r: r[0])
    dim = len(out[0][2]) if out else 0
    return _Rows(
        row_ids=np.asarray([r[0] for r in out], dtype=np.int64),
        texts=[r[1] for r in out],
        embeddings=np.vstack([r[2] for r in out]) if out else np.zeros((0, dim), np.float32),
        sentiment=np.asarray([float(r[3]) for r in out], dtype=np.float64),
        negative=np.asarray([r[4] == "negative" for r in out], dtype=bool),
    )


def scan(*, db_session: Session, settings: Settings, at: datetime, window_s: int | None = None) -> Scan:
    """Find the suggestions of the window ending at ``at`` (see the module docstring); writes nothing."""
    t0 = time.perf_counter()
    window = timedelta(seconds=window_s or settings.discovery_window_s)
    start, prev_start = at - window, at - 2 * window
    weak, cap, seed = settings.discovery_weak_score, settings.discovery_sample_cap, settings.discovery_seed
    unclaimed = _row_ids(db_session, start, at, claimed=False, weak=weak)
    previous = _row_ids(db_session, prev_start, start, claimed=False, weak=weak)
    rows = _read(db_session, _sample(unclaimed, cap, seed))
    out = Scan(at, start, prev_start, len(unclaimed), len(rows.row_ids), len(previous), 0)
    if not len(rows.row_ids):
        out.seconds = round(time.perf_counter() - t0, 3)
        return out
    x = normalise(rows.embeddings, np.float32)
    found = find_themes(
        x,
        sample_cap=cap,
        merge_similarity=settings.discovery_merge_similarity,
        min_cluster_size=settings.discovery_min_cluster_size,
        seed=seed,
    )
    out.k = len(found.clusters)
    if not found.clusters:
        out.seconds = round(time.perf_counter() - t0, 3)
        return out
    scale = len(unclaimed) / len(rows.row_ids)
    centroids = np.vstack([normalise(x[c.members].mean(axis=0), np.float32) for c in found.clusters])
    radii = [
        float(np.quantile(x[c.members] @ centroids[i], RADIUS_QUANTILE)) for i, c in enumerate(found.clusters)
    ]
    prev_counts = _previous_counts(db_session, _sample(previous, cap, seed + 1), centroids, radii)
    prev_scale = len(previous) / max(min(len(previous), cap), 1)
    keywords = _keywords(db_session, settings, rows, found.labels, len(found.clusters), start, at)
    for i, c in enumerate(found.clusters):
        size = round(c.size * scale, 2)
        prev = round(prev_counts[i] * prev_scale, 2)
        picks = representatives(x[c.members], settings.discovery_representatives)
        out.found.append(
            Found(
                centroid=centroids[i],
                radius=round(radii[i], 4),
                size=size,
                sampled=c.size,
                previous_size=prev,
                growth=round((size + 1) / (prev + 1), 4),
                mean_sentiment=round(float(rows.sentiment[c.members].mean()), 4),
                negative_share=round(float(rows.negative[c.members].mean()), 4),
                keywords=keywords[i],
                representatives=[(int(rows.row_ids[c.members[j]]), sim) for j, sim in picks],
            )
        )
    out.seconds = round(time.perf_counter() - t0, 3)
    return out


def _previous_counts(
    db_session: Session, row_ids: np.ndarray, centroids: np.ndarray, radii: list[float]
) -> list[int]:
    """Per cluster: previous-window comments whose nearest centroid is the cluster's, within its radius."""
    counts = [0] * len(centroids)
    for start in range(0, len(row_ids), CHUNK):
        prev = _read(db_session, row_ids[start : start + CHUNK], texts=False)
        if not len(prev.row_ids):
            continue
        sim = normalise(prev.embeddings, np.float32) @ centroids.T
        nearest = sim.argmax(axis=1)
        for j, c in enumerate(nearest):
            if sim[j, c] >= radii[c]:
                counts[int(c)] += 1
    return counts


def _keywords(
    db_session: Session,
    settings: Settings,
    rows: _Rows,
    labels: np.ndarray,
    n_clusters: int,
    start: datetime,
    end: datetime,
) -> list[list[str]]:
    """c-TF-IDF keywords per cluster; the background class: unclustered and (a sample of) claimed comments."""
    claimed = _row_ids(db_session, start, end, claimed=True, weak=settings.discovery_weak_score)
    background = _read(db_session, _sample(claimed, BACKGROUND_CAP, settings.discovery_seed + 2))
    terms = extract_terms([*rows.texts, *background.texts], settings.spacy_model)
    own, other = terms[: len(rows.texts)], terms[len(rows.texts) :]
    classes = [
        class_counts(t for t, lab in zip(own, labels, strict=True) if lab == i) for i in range(n_clusters)
    ]
    classes.append(class_counts([*(t for t, lab in zip(own, labels, strict=True) if lab < 0), *other]))
    return top_keywords(classes, k=settings.discovery_keywords, n_clusters=n_clusters)


# -- storage ------------------------------------------------------------------------------------------------
def replace_open(
    *, db_session: Session, scan: Scan, now: datetime, keep_alert_ids: Sequence[str] = ()
) -> list[TopicSuggestion]:
    """Store the scan's suggestions (status ``open``) in place of the previous run's open ones.

    A previous suggestion linked to an alert in ``keep_alert_ids`` (an open emerging alert) is kept as
    ``superseded`` (its centroid still identifies the alert's cluster); superseded ones of other alerts go."""
    keep = list(keep_alert_ids)
    db_session.execute(
        delete(TopicSuggestion).where(
            TopicSuggestion.status.in_(("open", "superseded")),
            TopicSuggestion.alert_id.is_(None) | TopicSuggestion.alert_id.not_in(keep),
        )
    )
    for old in db_session.scalars(select(TopicSuggestion).where(TopicSuggestion.status == "open")):
        old.status = "superseded"
    rows = [
        TopicSuggestion(
            id=f"sug_{uuid.uuid4().hex}",
            status="open",
            window_start=scan.window_start,
            window_end=scan.at,
            previous_start=scan.previous_start,
            size=f.size,
            sampled=f.sampled,
            previous_size=f.previous_size,
            growth=f.growth,
            mean_sentiment=f.mean_sentiment,
            negative_share=f.negative_share,
            keywords=list(f.keywords),
            representatives=[{"row_id": r, "similarity": s} for r, s in f.representatives],
            centroid=np.asarray(f.centroid, dtype=np.float32).tobytes(),
            radius=f.radius,
            alert_id=None,
            topic_id=None,
            created_at=now,
        )
        for f in scan.found
    ]
    db_session.add_all(rows)
    db_session.flush()
    return rows


def centroid(row: TopicSuggestion) -> np.ndarray:
    return np.frombuffer(row.centroid, dtype=np.float32)


# -- reads --------------------------------------------------------------------------------------------------
def get(*, db_session: Session, suggestion_id: str) -> TopicSuggestion:
    row = db_session.get(TopicSuggestion, suggestion_id)
    if row is None:
        raise NotFound(
            f"suggestion {suggestion_id!r} not found",
            detail=[{"field": "id", "message": "unknown suggestion (a later run may have replaced it)"}],
        )
    return row


def get_all(*, db_session: Session, query: SuggestionsQuery) -> list[TopicSuggestion]:
    """Stored suggestions with the query's statuses and overlapping its window, fastest-growing first."""
    cond: list[ColumnElement[bool]] = [TopicSuggestion.status.in_(query.status)]
    if query.start:
        cond.append(TopicSuggestion.window_end > query.start)
    if query.end:
        cond.append(TopicSuggestion.window_start < query.end)
    stmt = (
        select(TopicSuggestion)
        .where(*cond)
        .order_by(TopicSuggestion.window_end.desc(), TopicSuggestion.growth.desc(), TopicSuggestion.id)
        .limit(query.limit)
    )
    return list(db_session.scalars(stmt))


def to_out(*, db_session: Session, rows: Sequence[TopicSuggestion]) -> list[SuggestionOut]:
    """Public views of ``rows``, with their representative comments' texts (a deleted comment is left out)."""
    wanted = {int(r["row_id"]) for row in rows for r in row.representatives or []}
    by_row = {c.row_id: c for c in db_session.scalars(select(Comment).where(Comment.row_id.in_(wanted)))}
    return [
        SuggestionOut(
            id=row.id,
            status=row.status,  # type: ignore[arg-type]
            window_start=row.window_start,
            window_end=row.window_end,
            previous_window_start=row.previous_start,
            size=row.size,
            sampled=row.sampled,
            previous_size=row.previous_size,
            growth=row.growth,
            mean_sentiment=row.mean_sentiment,
            negative_share=row.negative_share,
            keywords=list(row.keywords),
            representatives=[
                RepresentativeComment(**comment_fields(by_row[r["row_id"]]), similarity=r["similarity"])
                for r in row.representatives or []
                if r["row_id"] in by_row
            ],
            alert_id=row.alert_id,
            topic_id=row.topic_id,
            created_at=row.created_at,
        )
        for row in rows
    ]


def mark_accepted(*, db_session: Session, suggestion_id: str, topic_id: str) -> TopicSuggestion:
    """Record that the suggestion became the topic ``topic_id`` (kept; later runs no longer replace it).
    409 if it is not open."""
    row = get(db_session=db_session, suggestion_id=suggestion_id)
    if row.status != "open":
        raise Conflict(
            f"suggestion {suggestion_id!r} is {row.status}; only an open suggestion can be accepted",
            detail=[{"field": "status", "message": "must be open"}],
        )
    row.status, row.topic_id = "accepted", topic_id
    db_session.flush()
    return row
