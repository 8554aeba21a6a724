"""The ``reembed`` job: comments whose vector another encoder made are analysed again with the served one.

After an encoder change (a new ``NLP_ENCODER``, an adapter, int8), the vectors stored before it live in
another embedding space: search leaves them out (``search.service``: the index holds the served encoder's
vectors only) until this job replaces them. Each slice reads the next comments by row id whose
``predictions.encoder`` is not the worker's encoder, analyses their texts with the worker's engine (one
encoder pass: vector, sentence vectors, heads, topics of the active taxonomy version), and in the fenced
write transaction rewrites their predictions, topics and stored head features and moves their topic
counts from the old topics and sentiment to the new ones. The worker must run the encoder the API serves:
a job planned for one encoder fails on a worker running another.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from nlp_service.comments.service import analysed_row, pack_features
from nlp_service.comments.tables import Comment, CommentFeatures, CommentTopic, Prediction
from nlp_service.inference.engine import Analysis
from nlp_service.jobs import resources
from nlp_service.jobs.kinds import JobError, JobKind, JobRun, Step, register
from nlp_service.topics.service import CountKey, add_counts, count_keys

PREDICTIONS = cast(Table, Prediction.__table__)
ANALYSIS_COLUMNS = (
    "sentiment_label",
    "sentiment_score",
    "sentiment_probs",
    "emotion_labels",
    "emotion_probs",
    "dominant_emotion",
    "intensity",
    "intensities",
    "valence",
    "arousal",
    "topics",
    "truncated",
    "embedding",
    "sentence_embeddings",
    "model_versions",
    "topics_version",
    "encoder",
)


class ReembedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: int = Field(default=64, ge=1, le=1000, description="Comments per slice (one encoder batch)")


@dataclass(frozen=True)
class Stale:
    rows: list[Any]  # row_id, text, source, touchpoint, region


@dataclass(frozen=True)
class Analysed:
    rows: list[Any]
    analyses: list[Analysis]


def served_encoder(run: JobRun[Any]) -> str:
    return str(resources.engine(run).models.versions["encoder"])


def _stale(target: str) -> Any:
    return or_(Prediction.encoder.is_(None), Prediction.encoder != target)


def plan(run: JobRun[ReembedParams], db_session: Session) -> tuple[int, dict[str, Any]]:
    target = served_encoder(run)
    total = int(db_session.scalar(select(func.count()).select_from(Prediction).where(_stale(target))) or 0)
    upto = int(db_session.scalar(select(func.max(Prediction.row_id))) or 0)
    return total, {"after": 0, "upto": upto, "encoder": target, "reembedded": 0}


def read(run: JobRun[ReembedParams], db_session: Session) -> Stale | None:
    target = run.cursor["encoder"]
    if served_encoder(run) != target:
        raise JobError(f"this job re-embeds for encoder {target}, but this worker runs {served_encoder(run)}")
    stmt = (
        select(Prediction.row_id, Comment.text, Comment.source, Comment.touchpoint, Comment.region)
        .join(Comment, Comment.row_id == Prediction.row_id)
        .where(
            Prediction.row_id > run.cursor["after"], Prediction.row_id <= run.cursor["upto"], _stale(target)
        )
        .order_by(Prediction.row_id)
        .limit(run.params.batch)
    )
    rows = list(db_session.execute(stmt))
    return Stale(rows) if rows else None


def compute(run: JobRun[ReembedParams], batch: Stale) -> Analysed:
    engine = resources.engine(run)
    if run.sessions is not None:  # tag with the taxonomy version the API serves
        from nlp_service.topics.changes import sync_active

        sync_active(run.sessions, engine)
    return Analysed(batch.rows, list(engine.analyze([r.text for r in batch.rows])))


def write(run: JobRun[ReembedParams], db_session: Session, work: Analysed) -> Step:
    """Rewrite the rows still stale (a comment deleted meanwhile is skipped) and move their counts."""
    target = run.cursor["encoder"]
    ids = [r.row_id for r in work.rows]
    current = select(Prediction.row_id, Prediction.sentiment_label, Comment.created_at).join(
        Comment, Comment.row_id == Prediction.row_id
    )
    current = current.where(Prediction.row_id.in_(ids), _stale(target))
    if db_session.get_bind().dialect.name == "postgresql":
        current = current.with_for_update(of=Prediction)
    still = {r.row_id: r for r in db_session.execute(current)}
    old_topics: dict[int, list[str]] = defaultdict(list)
    for rid, topic_id in db_session.execute(
        select(CommentTopic.row_id, CommentTopic.topic_id).where(CommentTopic.row_id.in_(list(still)))
    ):
        old_topics[rid].append(topic_id)
    updates: list[dict[str, Any]] = []
    topic_rows: list[dict[str, Any]] = []
    feature_rows: list[dict[str, Any]] = []
    acc: dict[CountKey, list[int]] = defaultdict(lambda: [0, 0])
    for r, analysis in zip(work.rows, work.analyses, strict=True):
        if r.row_id not in still:
            continue
        segments = {"region": r.region, "source": r.source, "touchpoint": r.touchpoint}
        row, best = analysed_row(analysis, segments)
        updates.append({"rid": r.row_id, **{f"v_{c}": row[c] for c in ANALYSIS_COLUMNS}})
        topic_rows.extend({"row_id": r.row_id, "topic_id": t, "score": s} for t, s in best.items())
        if analysis.features is not None and analysis.feature_spec is not None:
            feature_rows.append(
                {"row_id": r.row_id, "spec": analysis.feature_spec, "features": pack_features(analysis)}
            )
        created_at = still[r.row_id].created_at
        was_negative = int(still[r.row_id].sentiment_label == "negative")
        for key in count_keys(old_topics.get(r.row_id, []), created_at, segments):
            acc[key][0] -= 1
            acc[key][1] -= was_negative
        negative = int(row["sentiment_label"] == "negative")
        for key in count_keys(list(best), created_at, segments):
            acc[key][0] += 1
            acc[key][1] += negative
    if updates:
        db_session.execute(
            update(PREDICTIONS)
            .where(PREDICTIONS.c.row_id == bindparam("rid"))
            .values({c: bindparam(f"v_{c}", type_=PREDICTIONS.c[c].type) for c in ANALYSIS_COLUMNS}),
            updates,
        )
        done_ids = [u["rid"] for u in updates]
        db_session.execute(delete(CommentTopic).where(CommentTopic.row_id.in_(done_ids)))
        db_session.execute(delete(CommentFeatures).where(CommentFeatures.row_id.in_(done_ids)))
        if topic_rows:
            db_session.execute(insert(cast(Table, CommentTopic.__table__)), topic_rows)
        if feature_rows:
            db_session.execute(insert(cast(Table, CommentFeatures.__table__)), feature_rows)
    add_counts(db_session=db_session, counts={k: (n, neg) for k, (n, neg) in acc.items() if n or neg})
    cursor = {**run.cursor, "after": ids[-1], "reembedded": int(run.cursor["reembedded"]) + len(updates)}
    return Step(cursor=cursor, done=len(work.rows))


def finish(run: JobRun[ReembedParams], db_session: Session) -> dict[str, Any]:
    return {"reembedded": run.cursor["reembedded"], "encoder": run.cursor["encoder"]}


KIND = register(
    JobKind(
        name="reembed",
        scope="admin",
        params=ReembedParams,
        plan=plan,
        read=read,
        compute=compute,
        write=write,
        finish=finish,
        description="comments whose vector another encoder made, analysed again with the served one",
    )
)
