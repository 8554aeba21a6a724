"""Re-tagging the stored comments with a taxonomy version's model, after its activation (``RetagJob``).

A job is claimed with a lease (``retag_job_lease_s``) renewed by every batch; a job whose worker died is
claimed again once the lease has passed, up to ``retag_job_max_attempts`` claims (counted at claim), then
failed. A job that is superseded (a newer activation) or no longer this claim's stops at its next batch.

Each batch (:func:`retag_batch`) is one short transaction over the next comments by row id whose
``topics_version`` is not the job's: it renews the lease first (on SQLite that statement takes the write lock,
so the batch reads and writes one consistent state), reads the stored embeddings, sentence embeddings,
fields and sentiment, predicts with the version's model (no re-encoding), and replaces each comment's
``comment_topics``, ``predictions.topics`` and ``predictions.topics_version`` while applying the net change
to ``topic_counts`` (topics a comment lost -1, topics it gained +1). Counts are consistent at every commit;
concurrent ingest only adds rows, and a concurrent deletion is serialized by the row lock on the prediction
(PostgreSQL) or the write lock (SQLite). The job loops until no comment is on another version, so comments
ingested meanwhile by a replica still serving the older version are re-tagged too. Takes the session
keyword-only and never commits.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from nlp_service import leases
from nlp_service.comments.embeddings import unpack_sentences
from nlp_service.comments.tables import Comment, CommentTopic, Prediction
from nlp_service.db import rowcount
from nlp_service.timestamps import utcnow
from nlp_service.topics import versions
from nlp_service.topics.model import TopicModel
from nlp_service.topics.scorer import StalePrototypesError, TopicHit
from nlp_service.topics.service import CountKey, add_counts, count_keys
from nlp_service.topics.tables import RetagJob, TaxonomyVersion
from nlp_service.topics.taxonomy import TaxonomyError

ACTIVE = ("queued", "running")
MAX_ERROR_CHARS = 1000
IN_CHUNK = 500  # row ids per ``IN (...)`` list
PREDICTIONS = cast(Table, Prediction.__table__)  # Core tables: plain executemany (no ORM bulk semantics)
COMMENT_TOPICS = cast(Table, CommentTopic.__table__)


class RetagError(RuntimeError):
    """The job cannot run (its version is gone or has no stored model): failed without retrying."""


# -- jobs ------------------------------------------------------------------------------------------------
def submit(*, db_session: Session, version_id: int, now: datetime | None = None) -> RetagJob:
    """Queue a re-tag to ``version_id`` (activation does this itself; tests and benchmarks use this)."""
    job = RetagJob(
        id=f"retag_{uuid.uuid4().hex}",
        version_id=version_id,
        status="queued",
        done=0,
        total=0,
        attempts=0,
        created_at=now or utcnow(),
    )
    db_session.add(job)
    db_session.flush()
    return job


def in_progress(*, db_session: Session) -> RetagJob | None:
    """The oldest queued or running re-tag job (the alert detector pauses while there is one)."""
    stmt = select(RetagJob).where(RetagJob.status.in_(ACTIVE)).order_by(RetagJob.created_at).limit(1)
    return db_session.scalars(stmt).first()


def claim(
    *, db_session: Session, worker_id: str, lease_s: float, max_attempts: int, now: datetime | None = None
) -> RetagJob | None:
    """Claim the oldest queued (or abandoned) job; a job out of attempts is failed instead."""
    return leases.claim(
        RetagJob,
        db_session=db_session,
        worker_id=worker_id,
        lease_s=lease_s,
        max_attempts=max_attempts,
        now=now,
    )


def _mine(job: RetagJob) -> Any:
    return leases.mine(RetagJob, job)


def report_progress(
    *, db_session: Session, job: RetagJob, done: int, total: int, lease_s: float | None = None
) -> bool:
    """Store progress (and renew the lease); False if the job is no longer this claim's (superseded, or
    its lease passed and another worker claimed it)."""
    values: dict[str, Any] = {"done": done, "total": max(total, done)}
    if lease_s is not None:
        values["claimed_until"] = utcnow() + timedelta(seconds=lease_s)
    result = db_session.execute(
        update(RetagJob).where(_mine(job)).values(**values).execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


def finish(*, db_session: Session, job: RetagJob, error: str | None = None, retry: bool = False) -> bool:
    """Succeed, fail (``error``) or give the job back to the queue (``retry``); False if not this claim's."""
    values: dict[str, Any]
    if retry:
        values = {"status": "queued", "claimed_by": None, "claimed_until": None}
        values["error"] = error[:MAX_ERROR_CHARS] if error else None
    else:
        values = {
            "status": "failed" if error else "succeeded",
            "claimed_until": None,
            "finished_at": utcnow(),
        }
        if error is not None:
            values["error"] = error[:MAX_ERROR_CHARS]
    updated = db_session.execute(
        update(RetagJob).where(_mine(job)).values(**values).execution_options(synchronize_session=False)
    )
    return bool(rowcount(updated))


def release(*, db_session: Session, job: RetagJob) -> bool:
    """Give the job back to the queue on a graceful stop, without counting the claim as an attempt."""
    updated = db_session.execute(
        update(RetagJob)
        .where(_mine(job))
        .values(status="queued", claimed_by=None, claimed_until=None, attempts=RetagJob.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(updated))


# -- the model and what is left ----------------------------------------------------------------------------
def load_model(*, db_session: Session, version_id: int) -> TopicModel:
    """The stored topic model of a taxonomy version; ``RetagError`` if the version or its model is missing."""
    version = db_session.get(TaxonomyVersion, version_id)
    if version is None:
        raise RetagError(f"taxonomy version {version_id} not found")
    if version.model is None:
        raise RetagError(f"taxonomy version {version_id} has no stored topic model")
    try:
        taxonomy = versions.taxonomy_of(version)
        return TopicModel.from_bytes(taxonomy, version.model, version=version.id, key=version.model_key or "")
    except (TaxonomyError, StalePrototypesError) as exc:
        raise RetagError(f"taxonomy version {version_id}: {exc}") from exc


def _stale(version_id: int) -> Any:
    return or_(Prediction.topics_version.is_(None), Prediction.topics_version != version_id)


def pending(*, db_session: Session, version_id: int) -> int:
    """Stored comments not yet tagged by ``version_id``."""
    stmt = select(func.count()).select_from(Prediction).where(_stale(version_id))
    return int(db_session.scalar(stmt) or 0)


def max_row_id(*, db_session: Session) -> int:
    """The highest stored row id (a pass re-tags up to it: comments stored later are the next pass's)."""
    return int(db_session.scalar(select(func.max(Prediction.row_id))) or 0)


# -- one batch ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Batch:
    """What one batch did: comments re-tagged, the highest row id read (next batch starts above it), and
    series whose counts changed."""

    retagged: int
    last_row_id: int
    count_updates: int


def retag_batch(
    *,
    db_session: Session,
    job: RetagJob,
    model: TopicModel,
    after: int,
    upto: int,
    limit: int,
    done: int,
    total: int,
    lease_s: float,
) -> Batch | None:
    """Re-tag up to ``limit`` comments with row ids in ``(after, upto]`` not on the job's version and
    record the progress (``done`` before this batch, of ``total``); None (nothing written) if the job is
    no longer this claim's."""
    if not report_progress(db_session=db_session, job=job, done=done, total=total, lease_s=lease_s):
        return None
    version_id = job.version_id
    stmt = (
        select(
            Prediction.row_id,
            Prediction.embedding,
            Prediction.sentence_embeddings,
            Prediction.sentiment_label,
            Comment.created_at,
            Comment.source,
            Comment.touchpoint,
            Comment.region,
        )
        .join(Comment, Comment.row_id == Prediction.row_id)
        .where(Prediction.row_id > after, Prediction.row_id <= upto, _stale(version_id))
        .order_by(Prediction.row_id)
        .limit(limit)
    )
    if db_session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Prediction)  # a concurrent deletion waits (or is waited for)
    rows = db_session.execute(stmt).all()
    if not rows:
        return Batch(0, after, 0)
    row_ids = [r.row_id for r in rows]
    old: dict[int, list[str]] = defaultdict(list)
    wanted = set(row_ids)
    for rid, topic_id in db_session.execute(
        select(CommentTopic.row_id, CommentTopic.topic_id).where(
            CommentTopic.row_id > after, CommentTopic.row_id <= row_ids[-1]
        )
    ):
        if rid in wanted:
            old[rid].append(topic_id)

    hits = predict_rows(model, rows)
    deltas = count_deltas(rows, old, hits)
    for start in range(0, len(row_ids), IN_CHUNK):
        chunk = row_ids[start : start + IN_CHUNK]
        db_session.execute(delete(CommentTopic).where(CommentTopic.row_id.in_(chunk)))
    topic_rows = [
        {"row_id": r.row_id, "topic_id": h.id, "score": h.score}
        for r, hs in zip(rows, hits, strict=True)
        for h in hs
    ]
    if topic_rows:
        db_session.execute(insert(COMMENT_TOPICS), topic_rows)
    db_session.execute(
        update(PREDICTIONS)
        .where(PREDICTIONS.c.row_id == bindparam("rid"))
        .values(topics=bindparam("new_topics", type_=PREDICTIONS.c.topics.type), topics_version=version_id),
        [
            {"rid": r.row_id, "new_topics": [{"id": h.id, "name": h.name, "score": h.score} for h in hs]}
            for r, hs in zip(rows, hits, strict=True)
        ],
    )
    add_counts(db_session=db_session, counts=deltas)
    report_progress(db_session=db_session, job=job, done=done + len(rows), total=total)
    return Batch(len(rows), row_ids[-1], len(deltas))


def predict_rows(model: TopicModel, rows: Sequence[Any]) -> list[list[TopicHit]]:
    """Topics of stored comments (rows with ``embedding``, ``sentence_embeddings``, ``sentiment_label``,
    ``source``, ``touchpoint``, ``region``) from their stored embeddings; one hit per topic id."""
    dim = model.prototypes.dim
    blob = b"".join(r.embedding for r in rows)
    if len(blob) != len(rows) * dim * 4:
        raise RetagError(f"stored embeddings are not {dim}-dimensional like the version's model (encoder?)")
    x = np.frombuffer(blob, dtype=np.float32).reshape(len(rows), dim)
    sentences = [unpack_sentences(r.sentence_embeddings, dim) for r in rows]
    hits = model.predict(x, sentences=sentences if any(s is not None for s in sentences) else None)
    if any(t.query is not None for t in model.taxonomy.topics):
        hits = [
            model.keep(
                h,
                {
                    "source": r.source,
                    "touchpoint": r.touchpoint,
                    "region": r.region,
                    "sentiment": r.sentiment_label,
                },
            )  # fmt: skip
            for r, h in zip(rows, hits, strict=True)
        ]
    return hits


def count_deltas(
    rows: Sequence[Any], old: Mapping[int, Sequence[str]], new: Sequence[Sequence[TopicHit]]
) -> dict[CountKey, tuple[int, int]]:
    """Net ``(count, negative)`` change per series when each row's topics go from ``old`` to ``new``
    (rows with ``row_id``, ``created_at``, ``source``, ``touchpoint``, ``region``, ``sentiment_label``);
    series with no net change are left out."""
    acc: dict[CountKey, list[int]] = defaultdict(lambda: [0, 0])
    for r, hits in zip(rows, new, strict=True):
        before, after = set(old.get(r.row_id, ())), {h.id for h in hits}
        if before == after:
            continue
        negative = int(r.sentiment_label == "negative")
        segments = {"region": r.region, "source": r.source, "touchpoint": r.touchpoint}
        # the series of a topic are the comment's `_all` series with the topic in place of `_all`
        slots = [key[1:] for key in count_keys((), r.created_at, segments)]
        for topics, sign in ((before - after, -1), (after - before, 1)):
            for topic in topics:
                for slot in slots:
                    entry = acc[(topic, *slot)]
                    entry[0] += sign
                    entry[1] += sign * negative
    return {k: (n, neg) for k, (n, neg) in acc.items() if n or neg}
