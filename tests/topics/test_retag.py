"""Re-tagging stored comments after an activation (``topics.retag`` and the worker job ``topic-retag``), on
SQLite and PostgreSQL: counts equal counts recomputed from scratch, progress, a superseded job stops, a
crashed claim resumes, comments tagged meanwhile by an older replica are caught, a graceful stop releases.

Comments are synthetic (``topics.synthetic``): clustered embeddings stored directly, tagged by version A
(topics on clusters 0, 1, 2); version B moves ``delivery`` to cluster 2, ``app`` to cluster 1, adds
``returns`` (cluster 3) and a search-defined topic filtered on negative comments."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.comments import service as comments
from nlp_service.comments.tables import CommentTopic, Prediction
from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.topics import jobs, retag
from nlp_service.topics import synthetic as syn
from nlp_service.topics.tables import RetagJob, TaxonomyVersion
from nlp_service.topics.taxonomy import Taxonomy, Topic, TopicQuery
from nlp_service.worker import JobContext

START = datetime(2024, 3, 4, tzinfo=UTC)
DAY = timedelta(days=1)
A = {"billing": 0, "delivery": 1, "app": 2}
B = {"billing": 0, "delivery": 2, "app": 1, "returns": 3}


@dataclass
class World:
    db: sessionmaker[Session]
    c: np.ndarray
    version_a: int
    version_b: int
    model_a: Any
    labels: np.ndarray
    row_ids: list[int]


def taxonomy_b() -> Taxonomy:
    """B, plus a search-defined topic on cluster 4 kept only for negative comments."""
    tax = syn.taxonomy(B)
    angry = Topic(
        "angry_cluster", "Angry", "angry", query=TopicQuery("cluster 4", (("sentiment", ("negative",)),))
    )
    return Taxonomy((*tax.topics, angry), tax.name, tax.version, tax.default_threshold)


def make_world(db: sessionmaker[Session], n: int = 600, seed: int = 0) -> World:
    c = syn.centers(6, seed=seed)
    labels = np.random.default_rng(seed).integers(0, 6, n)
    x = syn.clustered(labels, c, seed=seed + 1)
    # every fifth comment has two sentences: its own cluster and cluster 3 (tagged `returns` by B only)
    sentences = [np.stack([x[i], syn.clustered([3], c, seed=i)[0]]) if i % 5 == 0 else None for i in range(n)]
    with session_scope(db) as s:
        va, model_a = syn.store_version(db_session=s, tax=syn.taxonomy(A), c=c)
        row_ids = syn.store_comments(
            db_session=s,
            embeddings=x,
            model=model_a,
            start=START,
            span=timedelta(days=10),
            sentences=sentences,
        )
        vb, _ = syn.store_version(db_session=s, tax=taxonomy_b(), c=c)
    return World(db, c, va.id, vb.id, model_a, labels, row_ids)


def context(db: sessionmaker[Session], worker: str = "w1", **settings: Any) -> JobContext:
    return JobContext("topic-retag", Settings(**settings), db, worker, asyncio.Event())


def submit(db: sessionmaker[Session], version_id: int) -> str:
    with session_scope(db) as s:
        return retag.submit(db_session=s, version_id=version_id).id


def job_row(db: sessionmaker[Session], job_id: str) -> RetagJob:
    with db() as s:
        job = s.get(RetagJob, job_id)
        assert job is not None
        return job


def assert_consistent(db: sessionmaker[Session]) -> None:
    with db() as s:
        assert syn.stored_counts(db_session=s) == syn.recount(db_session=s)


def topics_of(db: sessionmaker[Session], row_id: int) -> tuple[set[str], list[str], int | None]:
    with db() as s:
        rel = set(s.scalars(select(CommentTopic.topic_id).where(CommentTopic.row_id == row_id)))
        p = s.get(Prediction, row_id)
        assert p is not None
        return rel, [t["id"] for t in p.topics], p.topics_version


def test_retag_moves_topics_and_counts_equal_a_recount(db_sessions: sessionmaker[Session]) -> None:
    w = make_world(db_sessions)
    with db_sessions() as s:
        before = syn.stored_counts(db_session=s)
    assert_consistent(db_sessions)
    job_id = submit(db_sessions, w.version_b)

    assert jobs.run_retag_jobs(context(db_sessions, retag_batch_size=128)) == 0.0

    job = job_row(db_sessions, job_id)
    assert (job.status, job.done, job.total, job.attempts, job.error) == ("succeeded", 600, 600, 1, None)
    assert job.finished_at is not None
    assert_consistent(db_sessions)
    with db_sessions() as s:
        after = syn.stored_counts(db_session=s)
        assert retag.pending(db_session=s, version_id=w.version_b) == 0
    assert after != before
    names = {k[0] for k in after}
    assert {"returns", "angry_cluster"} <= names  # new topics are counted over the whole history
    expected = {0: {"billing"}, 1: {"app"}, 2: {"delivery"}, 3: {"returns"}, 5: set()}
    for i, rid in enumerate(w.row_ids):
        rel, listed, version = topics_of(db_sessions, rid)
        assert rel == set(listed) and version == w.version_b
        label = int(w.labels[i])
        if label in expected:
            want = expected[label] | ({"returns"} if i % 5 == 0 else set())
            assert rel == want, (i, label, rel)
    with db_sessions() as s:
        negative = {
            r for (r,) in s.execute(select(Prediction.row_id).where(Prediction.sentiment_label == "negative"))
        }
    angry = [rid for i, rid in enumerate(w.row_ids) if w.labels[i] == 4]
    assert any(r in negative for r in angry) and any(r not in negative for r in angry)
    for rid in angry:  # the search-defined topic keeps only the negative comments
        assert ("angry_cluster" in topics_of(db_sessions, rid)[0]) == (rid in negative)

    # deleting comments afterwards decrements what the re-tag wrote
    with session_scope(db_sessions) as s:
        for i in range(0, 600, 7):
            comments.delete(db_session=s, comment_id=f"c{i}")
    assert_consistent(db_sessions)


def test_progress_is_visible_after_every_batch(db_sessions: sessionmaker[Session]) -> None:
    w = make_world(db_sessions, n=300)
    job_id = submit(db_sessions, w.version_b)
    seen: list[tuple[int, int]] = []
    original = retag.retag_batch

    def spy(**kwargs: Any) -> retag.Batch | None:
        batch = original(**kwargs)
        with db_sessions() as s:  # another session: what GET /v1/topics/jobs/{id} would read
            job = s.get(RetagJob, job_id)
            assert job is not None and job.status == "running"
            seen.append((job.done, job.total))
        return batch

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(retag, "retag_batch", spy)
        jobs.run_retag_jobs(context(db_sessions, retag_batch_size=100))
    # seen inside each batch's transaction: the progress committed by the batches before
    assert seen == [(0, 300), (100, 300), (200, 300), (300, 300)]
    assert job_row(db_sessions, job_id).status == "succeeded"


def test_a_superseded_job_stops_and_the_newer_one_finishes(db_sessions: sessionmaker[Session]) -> None:
    w = make_world(db_sessions, n=300)
    job_id = submit(db_sessions, w.version_b)
    ctx = context(db_sessions, retag_batch_size=100)
    calls = [0]
    original = retag.retag_batch

    def supersede_after_first(**kwargs: Any) -> retag.Batch | None:
        calls[0] += 1
        if calls[0] == 2:  # an activation of version A again (rollback) while the job runs
            with session_scope(db_sessions) as s:
                s.execute(update(RetagJob).where(RetagJob.id == job_id).values(status="superseded"))
                retag.submit(db_session=s, version_id=w.version_a)
        return original(**kwargs)

    with session_scope(db_sessions) as s:
        claimed = retag.claim(db_session=s, worker_id="w1", lease_s=60, max_attempts=3)
    assert claimed is not None and claimed.id == job_id
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(retag, "retag_batch", supersede_after_first)
        assert jobs.run_job(ctx, claimed) == "lost"
    assert calls[0] == 2  # stopped at the batch after the supersede, having written nothing more
    old = job_row(db_sessions, job_id)
    assert (old.status, old.done) == ("superseded", 100)
    with db_sessions() as s:
        assert retag.pending(db_session=s, version_id=w.version_b) == 200
    assert_consistent(db_sessions)  # half-way counts are consistent too

    assert jobs.run_retag_jobs(ctx) == 0.0  # the rollback's job: back to A for the 100 re-tagged
    with db_sessions() as s:
        newer = s.scalars(select(RetagJob).where(RetagJob.id != job_id)).one()
        assert (newer.status, newer.done, newer.total) == ("succeeded", 100, 100)
        assert retag.pending(db_session=s, version_id=w.version_a) == 0
    assert_consistent(db_sessions)


def test_a_crashed_claim_resumes_after_its_lease(db_sessions: sessionmaker[Session]) -> None:
    w = make_world(db_sessions, n=300)
    job_id = submit(db_sessions, w.version_b)
    t0 = datetime.now(UTC)
    with session_scope(db_sessions) as s:
        first = retag.claim(db_session=s, worker_id="dead", lease_s=60, max_attempts=2, now=t0)
        assert first is not None
        model = retag.load_model(db_session=s, version_id=w.version_b)
    with session_scope(db_sessions) as s:  # one batch committed, then the worker dies
        batch = retag.retag_batch(
            db_session=s,
            job=first,
            model=model,
            after=0,
            upto=10**9,
            limit=120,
            done=0,
            total=300,
            lease_s=60,
        )
        assert batch is not None and batch.retagged == 120
    with pytest.raises(RuntimeError), session_scope(db_sessions) as s:  # the next one dies mid-transaction
        retag.retag_batch(
            db_session=s, job=first, model=model, after=batch.last_row_id, upto=10**9, limit=120, done=120,
            total=300, lease_s=60,
        )  # fmt: skip
        raise RuntimeError("killed")
    assert_consistent(db_sessions)
    with session_scope(db_sessions) as s:  # not claimable while the lease holds
        assert retag.claim(db_session=s, worker_id="w2", lease_s=60, max_attempts=2) is None
    with session_scope(db_sessions) as s:
        second = retag.claim(
            db_session=s, worker_id="w2", lease_s=60, max_attempts=2, now=t0 + timedelta(seconds=120)
        )
    assert second is not None and second.attempts == 2 and second.done == 120
    assert jobs.run_job(context(db_sessions, "w2"), second) == "succeeded"
    job = job_row(db_sessions, job_id)
    assert (job.status, job.done, job.total, job.attempts) == ("succeeded", 300, 300, 2)
    with session_scope(db_sessions) as s:  # the dead worker's claim can no longer write
        assert retag.report_progress(db_session=s, job=first, done=1, total=1) is False
    assert_consistent(db_sessions)


def test_a_job_out_of_attempts_fails(db_sessions: sessionmaker[Session]) -> None:
    w = make_world(db_sessions, n=50)
    job_id = submit(db_sessions, w.version_b)
    t = datetime.now(UTC)
    for i in range(2):
        with session_scope(db_sessions) as s:
            now = t + timedelta(seconds=100 * i)
            assert retag.claim(db_session=s, worker_id=f"w{i}", lease_s=10, max_attempts=2, now=now)
    with session_scope(db_sessions) as s:
        now = t + timedelta(seconds=300)
        assert retag.claim(db_session=s, worker_id="w9", lease_s=10, max_attempts=2, now=now) is None
    job = job_row(db_sessions, job_id)
    assert job.status == "failed" and "2 attempts" in (job.error or "")


def test_comments_tagged_meanwhile_by_an_older_replica_are_caught(db_sessions: sessionmaker[Session]) -> None:
    w = make_world(db_sessions, n=300)
    job_id = submit(db_sessions, w.version_b)
    original = retag.retag_batch
    calls = [0]

    def ingest_during(**kwargs: Any) -> retag.Batch | None:
        calls[0] += 1
        if calls[0] == 2:  # a replica still serving version A stores 40 comments now
            x = syn.clustered(np.arange(40) % 6, w.c, seed=9)
            with session_scope(db_sessions) as s:
                syn.store_comments(
                    db_session=s,
                    embeddings=x,
                    model=w.model_a,
                    start=START,
                    span=timedelta(days=12),
                    prefix="late",
                )
        return original(**kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(retag, "retag_batch", ingest_during)
        jobs.run_retag_jobs(context(db_sessions, retag_batch_size=100))
    job = job_row(db_sessions, job_id)
    assert (job.status, job.done, job.total) == ("succeeded", 340, 340)
    with db_sessions() as s:
        assert retag.pending(db_session=s, version_id=w.version_b) == 0
    assert_consistent(db_sessions)


def test_a_replica_stuck_on_the_older_version_cannot_keep_the_job_going(
    db_sessions: sessionmaker[Session],
) -> None:
    w = make_world(db_sessions, n=100)
    job_id = submit(db_sessions, w.version_b)
    original = retag.retag_batch
    calls = [0]

    def ingest_always(**kwargs: Any) -> retag.Batch | None:
        calls[0] += 1
        x = syn.clustered([1, 2], w.c, seed=calls[0])
        with session_scope(db_sessions) as s:
            syn.store_comments(
                db_session=s, embeddings=x, model=w.model_a, start=START, span=DAY, prefix=f"stuck{calls[0]}-"
            )
        return original(**kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(retag, "retag_batch", ingest_always)
        jobs.run_retag_jobs(context(db_sessions, retag_batch_size=1000))
    job = job_row(db_sessions, job_id)
    assert job.status == "succeeded" and job.done == job.total
    assert calls[0] == 2 * jobs.MAX_PASSES  # each pass: one batch that re-tags, one that finds the end
    assert_consistent(db_sessions)


def test_a_graceful_stop_releases_the_job_without_spending_an_attempt(
    db_sessions: sessionmaker[Session],
) -> None:
    w = make_world(db_sessions, n=200)
    job_id = submit(db_sessions, w.version_b)
    ctx = context(db_sessions, retag_batch_size=50)
    original = retag.retag_batch

    def stop_after(**kwargs: Any) -> retag.Batch | None:
        batch = original(**kwargs)
        ctx.stopping.set()
        return batch

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(retag, "retag_batch", stop_after)
        jobs.run_retag_jobs(ctx)
    job = job_row(db_sessions, job_id)
    assert (job.status, job.done, job.attempts, job.claimed_by) == ("queued", 50, 0, None)
    assert jobs.run_retag_jobs(context(db_sessions)) == 0.0
    job = job_row(db_sessions, job_id)
    assert (job.status, job.done, job.total, job.attempts) == ("succeeded", 200, 200, 1)
    assert_consistent(db_sessions)


ERRORS = {"no model": "no stored topic model", "no version": "not found", "other encoder": "16-dimensional"}


@pytest.mark.parametrize("problem", list(ERRORS))
def test_a_version_it_cannot_use_fails_the_job_at_once(
    db_sessions: sessionmaker[Session], problem: str
) -> None:
    w = make_world(db_sessions, n=20)
    version = {"no model": w.version_b, "no version": 999}.get(problem, 0)
    with session_scope(db_sessions) as s:
        if problem == "no model":
            s.execute(update(TaxonomyVersion).where(TaxonomyVersion.id == w.version_b).values(model=None))
        if problem == "other encoder":  # a model built for 16-d embeddings; the stored ones are 384-d
            version = syn.store_version(db_session=s, tax=syn.taxonomy(B), c=syn.centers(6, dim=16))[0].id
    job_id = submit(db_sessions, version)
    jobs.run_retag_jobs(context(db_sessions))
    job = job_row(db_sessions, job_id)
    assert job.status == "failed" and job.attempts == 1
    assert ERRORS[problem] in (job.error or "")
    with db_sessions() as s:
        assert retag.pending(db_session=s, version_id=w.version_a) == 0  # nothing touched
    assert_consistent(db_sessions)
