"""Jobs: submit, read, list and cancel (the API), and the claim/fence/commit steps the runner uses.

Claims reuse :mod:`nlp_service.leases` (PostgreSQL: ``SKIP LOCKED``; SQLite: a guarded update). Every write
transaction of a running job starts with :func:`fence`, an update of the job's own row that only matches while
the claim is still this worker's and no cancel was asked: it renews the lease and, on PostgreSQL, locks the
row until commit (a claim skips locked rows), on SQLite it takes the write lock. The slice's work, its
``job_slices`` row and the job's cursor then commit together, so a slice is applied once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nlp_service import leases
from nlp_service.db import rowcount
from nlp_service.errors import Conflict, NotFound
from nlp_service.jobs.kinds import Step
from nlp_service.jobs.tables import Job, JobSlice
from nlp_service.timestamps import utcnow

ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")
MAX_ERROR_CHARS = 1000


def submit(
    *,
    db_session: Session,
    kind: str,
    params: dict[str, Any],
    created_by: str | None = None,
    now: datetime | None = None,
) -> Job:
    """Queue a job of ``kind`` (params already validated by the kind's model)."""
    job = Job(
        id=f"job_{uuid.uuid4().hex}",
        kind=kind,
        params=params,
        status="queued",
        done=0,
        total=0,
        slices=0,
        cancel_requested=False,
        created_by=created_by,
        attempts=0,
        created_at=now or utcnow(),
    )
    db_session.add(job)
    db_session.flush()
    return job


def submit_once(*, db_session: Session, kind: str, params: dict[str, Any]) -> Job:
    """A queued job of ``kind`` with the same params if there is one (it has not started: it will see
    today's state), else a new one."""
    stmt = select(Job).where(Job.kind == kind, Job.status == "queued").order_by(Job.created_at)
    for job in db_session.scalars(stmt):
        if job.params == params and not job.cancel_requested:
            return job
    return submit(db_session=db_session, kind=kind, params=params)


def get(*, db_session: Session, job_id: str) -> Job:
    job = db_session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found", detail=[{"field": "id", "message": "unknown"}])
    return job


def list_jobs(
    *,
    db_session: Session,
    kinds: Sequence[str] | None = None,
    status: str | None = None,
    limit: int = 50,
    before: datetime | None = None,
) -> list[Job]:
    """Newest first, optionally of some kinds, one status, created before ``before``."""
    stmt = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if kinds is not None:
        stmt = stmt.where(Job.kind.in_(list(kinds)))
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if before is not None:
        stmt = stmt.where(Job.created_at < before)
    return list(db_session.scalars(stmt))


def active(*, db_session: Session, kind: str) -> Job | None:
    """The oldest queued or running job of ``kind``."""
    stmt = select(Job).where(Job.kind == kind, Job.status.in_(ACTIVE)).order_by(Job.created_at).limit(1)
    return db_session.scalars(stmt).first()


def cancel(*, db_session: Session, job_id: str, now: datetime | None = None) -> Job:
    """Ask a job to stop: a queued job is cancelled at once, a running one after its current slice (what
    its committed slices did stays done). 409 for a finished job."""
    now = now or utcnow()
    job = get(db_session=db_session, job_id=job_id)
    if job.status in FINISHED:
        raise Conflict(
            f"job {job_id!r} is already {job.status}", detail=[{"field": "status", "message": job.status}]
        )
    values: dict[str, Any] = {"cancel_requested": True, "updated_at": now}
    db_session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="cancelled", finished_at=now, claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    db_session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db_session.refresh(job)
    return job


# -- the runner's steps --------------------------------------------------------------------------------------
def claim(
    *,
    db_session: Session,
    worker_id: str,
    lease_s: float,
    max_attempts: int,
    kinds: Sequence[str],
    now: datetime | None = None,
) -> Job | None:
    """Claim the oldest claimable job of one of ``kinds`` (None if there is none)."""
    return leases.claim(
        Job,
        db_session=db_session,
        worker_id=worker_id,
        lease_s=lease_s,
        max_attempts=max_attempts,
        now=now,
        where=Job.kind.in_(list(kinds)),
    )


def _mine(job: Job) -> Any:
    return leases.mine(Job, job)


def fence(*, db_session: Session, job: Job, lease_s: float) -> bool:
    """Renew the lease if the claim is still this worker's and no cancel was asked (and hold the row until
    the transaction ends); False otherwise: the caller writes nothing."""
    now = utcnow()
    renewed = db_session.execute(
        update(Job)
        .where(_mine(job), Job.cancel_requested.is_(False))
        .values(claimed_until=now + timedelta(seconds=lease_s), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(renewed))


def progress(*, db_session: Session, job: Job, done: int, total: int, lease_s: float) -> bool:
    """Progress inside a slice (and a renewed lease); False if cancelled or no longer this claim's."""
    now = utcnow()
    updated = db_session.execute(
        update(Job)
        .where(_mine(job), Job.cancel_requested.is_(False))
        .values(
            done=done, total=max(done, total), claimed_until=now + timedelta(seconds=lease_s), updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(updated))


def planned(*, db_session: Session, job: Job, total: int, cursor: dict[str, Any]) -> None:
    """Store the plan (total and the first cursor), in a fenced transaction."""
    db_session.execute(
        update(Job)
        .where(_mine(job))
        .values(total=total, cursor=cursor)
        .execution_options(synchronize_session=False)
    )
    job.total, job.cursor = total, cursor


def committed(*, db_session: Session, job: Job, step: Step) -> None:
    """Record a slice with the job's new cursor and progress, in the slice's fenced transaction."""
    now = utcnow()
    db_session.add(
        JobSlice(
            job_id=job.id,
            seq=job.slices,
            worker_id=job.claimed_by or "",
            attempt=job.attempts,
            done=step.done,
            at=now,
        )
    )
    done = job.done + step.done
    total = max(step.total if step.total is not None else job.total, done)
    db_session.execute(
        update(Job)
        .where(_mine(job))
        .values(cursor=step.cursor, done=done, total=total, slices=job.slices + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db_session.flush()
    job.cursor, job.done, job.total, job.slices = step.cursor, done, total, job.slices + 1


def finish(
    *,
    db_session: Session,
    job: Job,
    status: str,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """End this claim: ``succeeded``, ``failed``, ``cancelled``, or ``queued`` (back to the queue after an
    error, the claim counted); False if the claim is no longer this worker's."""
    now = utcnow()
    values: dict[str, Any] = {"status": status, "claimed_until": None, "updated_at": now}
    if status == "queued":
        values["claimed_by"] = None
    else:
        values["finished_at"] = now
    if result is not None:
        values["result"] = result
    if error is not None:
        values["error"] = error[:MAX_ERROR_CHARS]
    updated = db_session.execute(
        update(Job).where(_mine(job)).values(**values).execution_options(synchronize_session=False)
    )
    return bool(rowcount(updated))


def release(*, db_session: Session, job: Job) -> bool:
    """Give the job back on a graceful stop, without counting the claim as an attempt."""
    updated = db_session.execute(
        update(Job)
        .where(_mine(job))
        .values(status="queued", claimed_by=None, claimed_until=None, attempts=Job.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(updated))


def last_update(*, db_session: Session, kind: str) -> datetime | None:
    """When a job of ``kind`` last moved (a slice, a finish), or None if there is none."""
    from sqlalchemy import func

    return db_session.scalar(select(func.max(Job.updated_at)).where(Job.kind == kind))


def slices_of(*, db_session: Session, job_id: str) -> list[JobSlice]:
    return list(db_session.scalars(select(JobSlice).where(JobSlice.job_id == job_id).order_by(JobSlice.seq)))
