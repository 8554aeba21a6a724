"""The job framework (``nlp_service.jobs``) on SQLite and PostgreSQL: slices commit once with their cursor,
progress, cancel (queued and running), a dead worker's job resumed by another, retries and failures, and
two workers sharing jobs never applying a slice twice."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.jobs import jobs as worker_job
from nlp_service.jobs import runner, service
from nlp_service.jobs.tables import Job, JobFile, JobSlice
from nlp_service.timestamps import utcnow
from nlp_service.worker import JobContext
from tests.jobs.kinds import ITEMS


def context(db: sessionmaker[Session], worker: str = "w1", **settings: Any) -> JobContext:
    return JobContext("background-jobs", Settings(**settings), db, worker, asyncio.Event())


def submit(db: sessionmaker[Session], **params: Any) -> str:
    with session_scope(db) as s:
        return service.submit(db_session=s, kind=ITEMS.name, params=params).id


def job_row(db: sessionmaker[Session], job_id: str) -> Job:
    with db() as s:
        job = s.get(Job, job_id)
        assert job is not None
        s.expunge(job)
        return job


def items_written(db: sessionmaker[Session], job_id: str) -> list[int]:
    with db() as s:
        return list(s.scalars(select(JobFile.seq).where(JobFile.job_id == job_id).order_by(JobFile.seq)))


def slices(db: sessionmaker[Session], job_id: str) -> list[JobSlice]:
    with db() as s:
        return service.slices_of(db_session=s, job_id=job_id)


def claim(db: sessionmaker[Session], worker: str, *, lease_s: float = 60.0, now: Any = None) -> Job | None:
    with session_scope(db) as s:
        job = service.claim(
            db_session=s, worker_id=worker, lease_s=lease_s, max_attempts=3, kinds=[ITEMS.name], now=now
        )
        if job is not None:
            s.expunge(job)
        return job


def test_a_job_runs_in_slices_with_progress_and_a_result(db_sessions: sessionmaker[Session]) -> None:
    job_id = submit(db_sessions, items=10, per_slice=3)
    assert worker_job.run_background_jobs(context(db_sessions)) == 0.0
    job = job_row(db_sessions, job_id)
    assert job.status == "succeeded" and job.done == 10 and job.total == 10
    assert job.result == {"items": 10, "done": 10}
    assert job.slices == 4 and job.attempts == 1 and job.finished_at is not None
    assert items_written(db_sessions, job_id) == list(range(10))
    assert [(s.seq, s.done, s.worker_id) for s in slices(db_sessions, job_id)] == [
        (0, 3, "w1"),
        (1, 3, "w1"),
        (2, 3, "w1"),
        (3, 1, "w1"),
    ]
    assert worker_job.run_background_jobs(context(db_sessions)) is None  # nothing left


def test_cancel_a_queued_job_at_once_and_a_finished_one_is_409(db_sessions: sessionmaker[Session]) -> None:
    from nlp_service.errors import Conflict

    job_id = submit(db_sessions, items=4)
    with session_scope(db_sessions) as s:
        assert service.cancel(db_session=s, job_id=job_id).status == "cancelled"
    assert worker_job.run_background_jobs(context(db_sessions)) is None
    assert items_written(db_sessions, job_id) == []
    with session_scope(db_sessions) as s, pytest.raises(Conflict):
        service.cancel(db_session=s, job_id=job_id)


def test_cancel_a_running_job_stops_it_after_the_current_slice(db_sessions: sessionmaker[Session]) -> None:
    job_id = submit(db_sessions, items=30, per_slice=2)
    original = ITEMS.compute
    calls = []

    def cancel_during_second(run: Any, items: list[int]) -> Any:
        calls.append(items)
        if len(calls) == 2:
            with session_scope(db_sessions) as s:  # another transaction, as the API would
                service.cancel(db_session=s, job_id=job_id)
        return original(run, items)

    object.__setattr__(ITEMS, "compute", cancel_during_second)
    try:
        worker_job.run_background_jobs(context(db_sessions))
    finally:
        object.__setattr__(ITEMS, "compute", original)
    job = job_row(db_sessions, job_id)
    assert job.status == "cancelled" and job.cancel_requested and job.finished_at is not None
    done = items_written(db_sessions, job_id)
    assert done == [0, 1]  # the slice before the cancel stays done; the one computed meanwhile is not written
    assert job.done == len(done)


def test_a_dead_workers_job_is_resumed_by_another_from_the_last_slice(
    db_sessions: sessionmaker[Session],
) -> None:
    job_id = submit(db_sessions, items=9, per_slice=3)
    first = claim(db_sessions, "dead", lease_s=30.0)
    assert first is not None and first.id == job_id
    # the dead worker planned and committed one slice, then vanished (kill -9: no release)
    ctx = context(db_sessions, worker="dead", job_lease_s=30.0)
    original = ITEMS.read
    reads = []

    def die_after_one(run: Any, db_session: Session) -> Any:
        reads.append(run.cursor)
        if len(reads) == 2:
            raise KeyboardInterrupt  # stands for the process dying: nothing after this runs
        return original(run, db_session)

    object.__setattr__(ITEMS, "read", die_after_one)
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.run_claimed(ctx, first)
    finally:
        object.__setattr__(ITEMS, "read", original)
    assert job_row(db_sessions, job_id).status == "running"
    assert claim(db_sessions, "w2") is None  # its lease still runs
    later = utcnow() + timedelta(seconds=31)
    second = claim(db_sessions, "w2", now=later)
    assert second is not None and second.attempts == 2 and second.cursor == {"next": 3}
    assert runner.run_claimed(context(db_sessions, worker="w2"), second) == "succeeded"
    assert items_written(db_sessions, job_id) == list(range(9))
    assert [(s.seq, s.worker_id) for s in slices(db_sessions, job_id)] == [(0, "dead"), (1, "w2"), (2, "w2")]
    # the dead claim, were it to come back, writes nothing
    with session_scope(db_sessions) as s:
        assert not service.fence(db_session=s, job=first, lease_s=30.0)


def test_a_transient_error_retries_and_a_job_error_fails(db_sessions: sessionmaker[Session]) -> None:
    flaky = submit(db_sessions, items=6, per_slice=2, fail_at_slice=1)
    assert worker_job.run_background_jobs(context(db_sessions, job_max_attempts=2)) == 0.0
    job = job_row(db_sessions, flaky)
    assert job.status == "queued" and "transient failure" in (job.error or "") and job.done == 2
    worker_job.run_background_jobs(context(db_sessions, job_max_attempts=2))
    assert job_row(db_sessions, flaky).status == "queued"
    worker_job.run_background_jobs(context(db_sessions, job_max_attempts=2))  # out of attempts
    assert job_row(db_sessions, flaky).status == "failed"
    assert items_written(db_sessions, flaky) == [0, 1]  # the first slice, once

    fatal = submit(db_sessions, items=6, per_slice=2, fail_at_slice=0, fatal=True)
    worker_job.run_background_jobs(context(db_sessions))
    job = job_row(db_sessions, fatal)
    assert job.status == "failed" and job.error == "this item cannot be done" and job.attempts == 1


def test_a_graceful_stop_releases_the_job_without_spending_an_attempt(
    db_sessions: sessionmaker[Session],
) -> None:
    job_id = submit(db_sessions, items=6, per_slice=2)
    ctx = context(db_sessions)
    original = ITEMS.write

    def stop_after_first(run: Any, db_session: Session, items: list[int]) -> Any:
        ctx.stopping.set()
        return original(run, db_session, items)

    object.__setattr__(ITEMS, "write", stop_after_first)
    try:
        worker_job.run_background_jobs(ctx)
    finally:
        object.__setattr__(ITEMS, "write", original)
    job = job_row(db_sessions, job_id)
    assert job.status == "queued" and job.attempts == 0 and job.done == 2 and job.cursor == {"next": 2}
    worker_job.run_background_jobs(context(db_sessions))
    assert job_row(db_sessions, job_id).status == "succeeded"
    assert items_written(db_sessions, job_id) == list(range(6))


def test_two_workers_sharing_jobs_never_apply_a_slice_twice(db_sessions: sessionmaker[Session]) -> None:
    """Two workers loop over the queue with a lease shorter than a slice's compute time, so each job is
    taken over again and again mid-slice; every item is still written once and the slices are in order."""
    ids = [submit(db_sessions, items=12, per_slice=2, sleep_s=0.15) for _ in range(3)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop(worker: str) -> None:
        ctx = context(db_sessions, worker=worker, job_lease_s=0.2, job_max_attempts=1000)
        try:
            while not stop.is_set():
                if worker_job.run_background_jobs(ctx) is None:
                    with db_sessions() as s:
                        left = s.scalar(
                            select(func.count()).select_from(Job).where(Job.status != "succeeded")
                        )
                    if not left:
                        return
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    assert not errors
    for job_id in ids:
        job = job_row(db_sessions, job_id)
        assert job.status == "succeeded", (job.status, job.error)
        assert items_written(db_sessions, job_id) == list(range(12))
        seqs = slices(db_sessions, job_id)
        assert [s.seq for s in seqs] == list(range(6))
        assert sum(s.done for s in seqs) == 12 == job.done
    workers = {s.worker_id for job_id in ids for s in slices(db_sessions, job_id)}
    assert workers == {"w0", "w1"}  # both took part
