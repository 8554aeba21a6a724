"""The ``reembed`` job (``comments.reembed``) and search across an encoder change, on SQLite and PostgreSQL:
comments stored by encoder A are left out of a vector index serving encoder B until the job has analysed
them again with B; then every stored vector, topic and count is B's (counts equal a recount). And a
re-embedding job survives a worker kill -9: another worker resumes it after the lease and it finishes once
(every slice committed once, every comment re-embedded once)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.comments import service as comments
from nlp_service.comments.schemas import CommentIn
from nlp_service.comments.tables import Prediction
from nlp_service.config import REPO_ROOT, Settings
from nlp_service.db import session_scope
from nlp_service.jobs import jobs as worker_job
from nlp_service.jobs import service
from nlp_service.jobs.tables import Job, JobSlice
from nlp_service.search.service import SearchService
from nlp_service.topics import synthetic as syn
from nlp_service.worker import JobContext
from tests.conftest import FakeEngine
from tests.jobs.fake_worker import ENCODER_B, EngineB, embedding_b

START = datetime(2024, 5, 1, tzinfo=UTC)
WORDS = "late refund app crashes great delivery rude billing charged twice thanks fast".split()


def store(db: sessionmaker[Session], n: int) -> list[int]:
    """``n`` comments analysed by the default fake engine (encoder ``fake-hashing@0``)."""
    rng = np.random.default_rng(0)
    engine = FakeEngine()
    batch = [
        CommentIn(
            id=f"c{i}",
            text=" ".join(rng.choice(WORDS, size=6)) + f" number {i}",
            created_at=START + timedelta(hours=i),
            source="survey",
            region=["eu", "us"][i % 2],
        )
        for i in range(n)
    ]
    with session_scope(db) as s:
        created = comments.create_many(
            db_session=s,
            comments=batch,
            hashes=[comments.payload_hash(c) for c in batch],
            analyses=engine.analyze([c.text for c in batch]),
            terms=[{} for _ in batch],  # type: ignore[misc]
        )
    return created.row_ids


def encoders(db: sessionmaker[Session]) -> dict[str | None, int]:
    with db() as s:
        return dict(s.execute(select(Prediction.encoder, func.count()).group_by(Prediction.encoder)).all())  # type: ignore[arg-type]


def test_search_serves_one_encoders_vectors_and_reembedding_brings_the_rest(
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    row_ids = store(db_sessions, 40)
    assert encoders(db_sessions) == {"fake-hashing@0": 40}
    settings = Settings(var_dir=tmp_path, search_sync_interval_s=0, search_save_interval_s=0)
    search = SearchService(settings, db_sessions)
    search.open()
    assert search.index.wait(30) and len(search.index) == 40
    search.use_encoder(ENCODER_B)  # the API now serves encoder B: A's vectors leave the index
    assert search.index.wait(30) and len(search.index) == 0
    with db_sessions() as s:  # "more like this" on a vector of another encoder: a clear 409
        from nlp_service.errors import Conflict
        from nlp_service.search.queries import comment_vector

        try:
            comment_vector(db_session=s, comment_id="c1", encoder=ENCODER_B)
            raise AssertionError("expected a Conflict")
        except Conflict as exc:
            assert "re-embedding" in exc.message

    with session_scope(db_sessions) as s:
        job_id = service.submit(db_session=s, kind="reembed", params={"batch": 16}).id
    ctx = JobContext("background-jobs", settings, db_sessions, "w1", asyncio.Event())
    ctx.state["resources"] = {"engine": EngineB(settings)}
    assert worker_job.run_background_jobs(ctx) == 0.0
    with db_sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == "succeeded", job.error
        assert job.result == {"reembedded": 40, "encoder": ENCODER_B, "done": 40} and job.slices == 3
        vectors = dict(s.execute(select(Prediction.row_id, Prediction.embedding)).all())
        assert syn.stored_counts(db_session=s) == syn.recount(db_session=s)
    assert encoders(db_sessions) == {ENCODER_B: 40}
    from nlp_service.comments.tables import Comment

    with db_sessions() as s:
        for rid, text in s.execute(select(Comment.row_id, Comment.text)):
            assert np.array_equal(np.frombuffer(vectors[rid], np.float32), embedding_b(text))

    search.sync()  # the sync loop's step: a re-embedding job moved, so the index catches up
    assert search.index.wait(30) and len(search.index) == 40
    found, _ = search.index.reconstruct(row_ids)
    assert sorted(int(i) for i in found) == sorted(row_ids)
    search.close()


def test_a_reembedding_job_survives_a_worker_kill_9(
    db_sessions: sessionmaker[Session], database_url: str
) -> None:
    n = 60
    store(db_sessions, n)
    with session_scope(db_sessions) as s:
        job_id = service.submit(db_session=s, kind="reembed", params={"batch": 5}).id
    env = {
        **os.environ,
        "NLP_DATABASE_URL": database_url,
        "NLP_JOB_POLL_S": "0.1",
        "NLP_JOB_LEASE_S": "2",
        "NLP_TEST_SECONDS_PER_TEXT": "0.02",
        "NLP_LOG_LEVEL": "warning",
        "PYTHONPATH": str(REPO_ROOT),
    }

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "tests.jobs.fake_worker"], cwd=REPO_ROOT, env=env)

    def job() -> Job:
        with db_sessions() as s:
            found = s.get(Job, job_id)
            assert found is not None
            s.expunge(found)
            return found

    first = start()
    try:
        deadline = time.monotonic() + 60
        while job().slices < 3:
            assert time.monotonic() < deadline, "the first worker made no progress"
            assert first.poll() is None, "the first worker exited"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = job()
        assert killed_at.status == "running" and killed_at.slices < n // 5
        second = start()
        try:
            deadline = time.monotonic() + 90
            while (now := job()).status != "succeeded":  # one read per look: it may finish in between
                assert now.status in ("running", "queued"), now.error
                assert time.monotonic() < deadline, "the job was not resumed"
                time.sleep(0.1)
        finally:
            second.terminate()
            second.wait(15)
    finally:
        if first.poll() is None:
            first.kill()
    done = job()
    assert done.attempts == 2 and done.result == {"reembedded": n, "encoder": ENCODER_B, "done": n}
    with db_sessions() as s:
        slices = list(s.scalars(select(JobSlice).where(JobSlice.job_id == job_id).order_by(JobSlice.seq)))
        assert [x.seq for x in slices] == list(range(n // 5))  # each slice committed once, in order
        assert sum(x.done for x in slices) == n
        assert len({x.worker_id for x in slices}) == 2  # the killed worker's and its successor's
        assert syn.stored_counts(db_session=s) == syn.recount(db_session=s)
    assert encoders(db_sessions) == {ENCODER_B: n}
