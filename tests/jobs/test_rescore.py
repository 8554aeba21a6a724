"""The ``rescore`` job (``comments.rescore``) on SQLite and PostgreSQL, with the shipped heads: stored
comments get exactly what the active heads compute from their stored features, comments without features
are skipped and counted, topic counts' ``negative`` follows the new sentiment (equal to a recount), and
promoting a head queues the job."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.comments.rescore import KIND, active_heads
from nlp_service.comments.tables import Prediction
from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.inference.engine import HEAD_TASKS, feature_spec
from nlp_service.inference.registry import ModelRegistry
from nlp_service.jobs import jobs as worker_job
from nlp_service.jobs import service
from nlp_service.jobs.kinds import JobRun
from nlp_service.jobs.tables import Job
from nlp_service.topics import synthetic as syn
from nlp_service.worker import JobContext

MODELS = Path(__file__).resolve().parents[2] / "models"
START = datetime(2024, 3, 4, tzinfo=UTC)


def heads() -> dict:
    registry = ModelRegistry(MODELS)
    return {task: registry.load_active(task) for task in HEAD_TASKS}


def test_rescore_applies_the_active_heads_to_stored_features(db_sessions: sessionmaker[Session]) -> None:
    n, without = 260, 20
    loaded = heads()
    sha = next(iter(loaded.values())).encoder_sha256
    layers = tuple(sorted({layer for h in loaded.values() for layer in h.features.layers}))
    c = syn.centers(3, seed=0)
    x = syn.clustered(np.arange(n) % 3, c, seed=1)
    with session_scope(db_sessions) as s:
        _, model = syn.store_version(db_session=s, tax=syn.taxonomy({"a": 0, "b": 1}), c=c)
        row_ids = syn.store_comments(
            db_session=s, embeddings=x, model=model, start=START, span=timedelta(days=5)
        )
        feats = syn.store_features(
            db_session=s, row_ids=row_ids[without:], spec=feature_spec(sha, layers), shape=(len(layers), 384)
        )
        job_id = service.submit(db_session=s, kind="rescore", params={"batch": 64}).id
    settings = Settings(models_dir=MODELS)
    ctx = JobContext("background-jobs", settings, db_sessions, "w1", asyncio.Event())
    assert worker_job.run_background_jobs(ctx) == 0.0

    with db_sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == "succeeded", job.error
        assert job.result is not None
        assert job.result["rescored"] == n - without and job.result["skipped"] == without
        assert job.result["versions"] == {t: h.version for t, h in loaded.items()}
        assert job.done == n and job.slices == 5
        preds = {p.row_id: p for p in s.scalars(select(Prediction))}
        # what the heads say, computed here directly from the features
        f32 = feats.astype(np.float32)
        position = {layer: i for i, layer in enumerate(layers)}
        probs = loaded["sentiment"].predict_features(
            f32[:, [position[i] for i in loaded["sentiment"].features.layers]].reshape(len(f32), -1)
        )
        labels = loaded["sentiment"].labels
        for rid, p in zip(row_ids[without:], probs, strict=True):
            assert preds[rid].sentiment_label == labels[int(np.argmax(p))]
            assert preds[rid].model_versions["sentiment"] == loaded["sentiment"].version
            assert preds[rid].emotion_probs and preds[rid].intensities
        for rid in row_ids[:without]:  # no features: left as they were
            assert preds[rid].sentiment_score == 0.9 and "sentiment" not in preds[rid].model_versions
        assert len({preds[rid].sentiment_label for rid in row_ids[without:]}) > 1  # it did change some
        assert syn.stored_counts(db_session=s) == syn.recount(db_session=s)


def test_heads_reading_a_layer_not_stored_skip_the_comment() -> None:
    from nlp_service.comments.rescore import head_inputs

    loaded = heads()
    assert head_inputs(loaded, (6,), np.zeros((2, 1, 384), np.float32)) is None
    layers = tuple(range(1, 7))
    inputs = head_inputs(loaded, layers, np.zeros((2, 6, 384), np.float32))
    assert inputs is not None and inputs["sentiment"].shape == (2, 6 * 384)


def test_active_heads_are_loaded_once_per_job() -> None:
    run = JobRun(job_id="job_x", params=KIND.params(), cursor={}, settings=Settings(models_dir=MODELS))
    first = active_heads(run)
    assert active_heads(run) is first and set(first) == set(HEAD_TASKS)


def test_a_change_of_served_heads_queues_one_rescore_job(db_sessions: sessionmaker[Session]) -> None:
    from nlp_service.models_admin.schemas import ReloadResponse
    from nlp_service.models_admin.views import _queue_rescore

    same = ReloadResponse(previous={"sentiment": "v1"}, serving={"sentiment": "v1"}, changed=False)
    assert asyncio.run(_queue_rescore(same, db_sessions)).rescore_job is None
    changed = same.model_copy(update={"serving": {"sentiment": "v2"}, "changed": True})
    first = asyncio.run(_queue_rescore(changed, db_sessions)).rescore_job
    again = asyncio.run(_queue_rescore(changed, db_sessions)).rescore_job
    assert first is not None and again == first  # a queued job covers both changes
    with session_scope(db_sessions) as s:
        job = service.get(db_session=s, job_id=first)
        assert job.kind == "rescore" and job.status == "queued"
        job.status = "running"
    later = asyncio.run(_queue_rescore(changed, db_sessions)).rescore_job
    assert later not in (None, first)  # a running job started before this change: a new one


def test_batch_decoding_equals_decoding_each_row() -> None:
    from dataclasses import asdict

    from nlp_service.inference.results import decode, decode_heads_batch

    loaded = heads()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 6 * 384)).astype(np.float32) * 0.3
    outputs = {task: head.predict_features(x) for task, head in loaded.items()}
    outputs["intensity"][:5] = 1.5  # out of range: clipped alike
    batch = decode_heads_batch(loaded, outputs)
    for i, row in enumerate(batch):
        one = decode(loaded, {task: out[i] for task, out in outputs.items()}, [])
        s, e = one.sentiment, one.emotion
        assert row == {
            "sentiment_label": s.label,
            "sentiment_score": s.score,
            "sentiment_probs": s.probabilities,
            "emotion_labels": [asdict(x) for x in e.labels],
            "emotion_probs": e.probabilities,
            "dominant_emotion": e.dominant,
            "intensity": e.intensity,
            "intensities": e.intensities,
            "valence": e.valence,
            "arousal": e.arousal,
        }
