"""The ``rescore`` job: the stored comments re-scored by the served heads from their stored features.

After a head is promoted (``POST /v1/models/{task}/promote`` queues this job), each slice reads the next
comments by row id with their stored pooled-layer features (``comment_features``), runs every active head
on them (plain numpy: no encoder pass), and rewrites the sentiment / emotion / intensity / valence columns
and ``model_versions``; a comment whose sentiment turns negative or stops being so moves its topic-count
series' ``negative`` by one. Comments stored without features, or with another encoder's, are skipped
and counted (a ``reembed`` job re-analyses them). Topics and vectors are untouched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from nlp_service.comments.tables import Comment, CommentFeatures, CommentTopic, Prediction
from nlp_service.inference.engine import HEAD_TASKS, parse_feature_spec
from nlp_service.inference.heads import Head
from nlp_service.inference.registry import ModelRegistry
from nlp_service.inference.results import decode_heads_batch
from nlp_service.jobs.kinds import JobError, JobKind, JobRun, Step, register
from nlp_service.topics.service import CountKey, add_counts, count_keys

PREDICTIONS = cast(Table, Prediction.__table__)
HEAD_COLUMNS = (
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
)


class RescoreParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: int = Field(default=4000, ge=1, le=50_000, description="Comments per slice")


@dataclass(frozen=True)
class Rows:
    rows: list[Any]  # row_id, spec, features, sentiment_label, created_at, source, touchpoint, region
    topics: dict[int, list[str]]


@dataclass(frozen=True)
class Scored:
    last_row_id: int
    updates: list[dict[str, Any]]
    counts: dict[CountKey, tuple[int, int]]
    skipped: int


def active_heads(run: JobRun[Any]) -> dict[str, Head]:
    """The active version of every head (loaded once per job and worker)."""
    key = f"rescore-heads:{run.job_id}"
    heads = run.resources.get(key)
    if heads is None:
        registry = ModelRegistry(run.settings.models_dir)
        try:
            heads = {task: registry.load_active(task) for task in HEAD_TASKS}
        except Exception as exc:
            raise JobError(f"cannot load the active heads: {exc}") from exc
        run.resources = {k: v for k, v in run.resources.items() if not k.startswith("rescore-heads:")}
        run.resources[key] = heads
    return cast(dict[str, Head], heads)


def plan(run: JobRun[RescoreParams], db_session: Session) -> tuple[int, dict[str, Any]]:
    heads = active_heads(run)
    upto = int(db_session.scalar(select(func.max(Prediction.row_id))) or 0)
    total = int(db_session.scalar(select(func.count()).select_from(Prediction)) or 0)
    versions = {task: head.version for task, head in heads.items()}
    return total, {"after": 0, "upto": upto, "rescored": 0, "skipped": 0, "versions": versions}


def read(run: JobRun[RescoreParams], db_session: Session) -> Rows | None:
    after, upto = int(run.cursor["after"]), int(run.cursor["upto"])
    stmt = (
        select(
            Prediction.row_id,
            CommentFeatures.spec,
            CommentFeatures.features,
            Prediction.sentiment_label,
            Prediction.model_versions,
            Comment.created_at,
            Comment.source,
            Comment.touchpoint,
            Comment.region,
        )
        .join(Comment, Comment.row_id == Prediction.row_id)
        .outerjoin(CommentFeatures, CommentFeatures.row_id == Prediction.row_id)
        .where(Prediction.row_id > after, Prediction.row_id <= upto)
        .order_by(Prediction.row_id)
        .limit(run.params.batch)
    )
    rows = list(db_session.execute(stmt))
    if not rows:
        return None
    topics: dict[int, list[str]] = defaultdict(list)
    wanted = {r.row_id for r in rows}
    for rid, topic_id in db_session.execute(
        select(CommentTopic.row_id, CommentTopic.topic_id).where(
            CommentTopic.row_id > after, CommentTopic.row_id <= rows[-1].row_id
        )
    ):
        if rid in wanted:
            topics[rid].append(topic_id)
    return Rows(rows, dict(topics))


def head_inputs(
    heads: Mapping[str, Head], layers: Sequence[int], features: np.ndarray
) -> dict[str, np.ndarray] | None:
    """Each head's (n, dim) input from stored (n, len(layers), hidden) features; None if a head reads a
    layer that was not stored (or the search embedding)."""
    position = {layer: i for i, layer in enumerate(layers)}
    out: dict[str, np.ndarray] = {}
    shared: dict[tuple[int, ...], np.ndarray] = {}  # heads reading the same layers share one matrix
    for task, head in heads.items():
        wanted = tuple(head.features.layers)
        if head.features.embedding or any(layer not in position for layer in wanted):
            return None
        if wanted not in shared:
            if wanted == tuple(layers):
                shared[wanted] = features.reshape(len(features), -1)  # a view, no copy
            else:
                shared[wanted] = features[:, [position[layer] for layer in wanted]].reshape(len(features), -1)
        out[task] = shared[wanted]
    return out


def score(heads: Mapping[str, Head], batch: Rows, versions: Mapping[str, str]) -> Scored:
    """New head columns for the rows whose stored features the heads can read (pure)."""
    groups: dict[str, list[int]] = defaultdict(list)
    skipped = 0
    shas = {head.encoder_sha256 for head in heads.values()}
    for i, r in enumerate(batch.rows):
        if r.spec is None or parse_feature_spec(r.spec)[0] not in shas:
            skipped += 1
        else:
            groups[r.spec].append(i)
    updates: list[dict[str, Any]] = []
    acc: dict[CountKey, list[int]] = defaultdict(lambda: [0, 0])
    for spec, index in groups.items():
        _, layers = parse_feature_spec(spec)
        rows = [batch.rows[i] for i in index]
        feats = np.frombuffer(b"".join(r.features for r in rows), dtype=np.float16)
        feats = feats.reshape(len(rows), len(layers), -1).astype(np.float32)
        inputs = head_inputs(heads, layers, feats)
        if inputs is None:
            skipped += len(rows)
            continue
        outputs = {task: heads[task].predict_features(x) for task, x in inputs.items()}
        for r, columns in zip(rows, decode_heads_batch(heads, outputs), strict=True):
            updates.append(
                {"rid": r.row_id, **columns, "model_versions": {**(r.model_versions or {}), **versions}}
            )
            was, now = r.sentiment_label == "negative", columns["sentiment_label"] == "negative"
            if was != now:
                segments = {"region": r.region, "source": r.source, "touchpoint": r.touchpoint}
                for key in count_keys(batch.topics.get(r.row_id, []), r.created_at, segments):
                    acc[key][1] += 1 if now else -1
    counts = {k: (n, neg) for k, (n, neg) in acc.items() if n or neg}
    return Scored(batch.rows[-1].row_id, updates, counts, skipped)


def compute(run: JobRun[RescoreParams], batch: Rows) -> Scored:
    return score(active_heads(run), batch, run.cursor["versions"])


def write(run: JobRun[RescoreParams], db_session: Session, scored: Scored) -> Step:
    if scored.updates:
        columns = (*HEAD_COLUMNS, "model_versions")
        db_session.execute(
            update(PREDICTIONS)
            .where(PREDICTIONS.c.row_id == bindparam("rid"))
            .values({c: bindparam(f"v_{c}", type_=PREDICTIONS.c[c].type) for c in columns}),
            [{"rid": u["rid"], **{f"v_{c}": u[c] for c in columns}} for u in scored.updates],
        )
    add_counts(db_session=db_session, counts=scored.counts)
    cursor = {
        **run.cursor,
        "after": scored.last_row_id,
        "rescored": int(run.cursor["rescored"]) + len(scored.updates),
        "skipped": int(run.cursor["skipped"]) + scored.skipped,
    }
    return Step(cursor=cursor, done=len(scored.updates) + scored.skipped)


def finish(run: JobRun[RescoreParams], db_session: Session) -> dict[str, Any]:
    cursor = run.cursor
    return {"rescored": cursor["rescored"], "skipped": cursor["skipped"], "versions": cursor["versions"]}


KIND = register(
    JobKind(
        name="rescore",
        scope="admin",
        params=RescoreParams,
        plan=plan,
        read=read,
        compute=compute,
        write=write,
        finish=finish,
        description="stored comments re-scored by the active heads from their stored features",
    )
)
