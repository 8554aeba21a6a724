"""Background detection jobs: long re-scans queued by ``POST /v1/detect`` (202) and run by the worker.

A job is claimed with a lease (``detection_job_lease_s``), renewed by each progress report; a job whose
worker died is claimed again once the lease has passed, up to ``detection_job_max_attempts`` claims (counted
at claim), then failed. Re-running a scan is safe: alerts are merged under the detector's lock.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from nlp_service import leases
from nlp_service.anomaly.schemas import DetectJobOut, DetectJobProgress, DetectRequest, DetectResponse
from nlp_service.anomaly.tables import DetectionJob
from nlp_service.db import rowcount
from nlp_service.errors import NotFound
from nlp_service.timestamps import utcnow

MAX_ERROR_CHARS = 1000


def submit(*, db_session: Session, request: DetectRequest, now: datetime | None = None) -> DetectionJob:
    """Queue a re-scan; ``at`` is pinned to now when omitted, so the job scans the period asked for."""
    now = now or utcnow()
    pinned = request.model_copy(update={"at": request.at or now})
    job = DetectionJob(
        id=f"djob_{uuid.uuid4().hex}",
        status="queued",
        request=pinned.model_dump(mode="json"),
        progress={"done": 0, "total": 0},
        attempts=0,
        created_at=now,
    )
    db_session.add(job)
    db_session.flush()
    return job


def get(*, db_session: Session, job_id: str) -> DetectionJob:
    job = db_session.get(DetectionJob, job_id)
    if job is None:
        raise NotFound(f"detection job {job_id!r} not found", detail=[{"field": "id", "message": "unknown"}])
    return job


def to_out(job: DetectionJob) -> DetectJobOut:
    return DetectJobOut(
        id=job.id,
        status=job.status,
        request=DetectRequest.model_validate(job.request),
        progress=DetectJobProgress.model_validate(job.progress or {"done": 0, "total": 0}),
        result=DetectResponse.model_validate(job.result) if job.result else None,
        error=job.error,
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def claim(
    *, db_session: Session, worker_id: str, lease_s: float, max_attempts: int, now: datetime | None = None
) -> DetectionJob | None:
    """Claim the oldest queued (or abandoned) job; a job out of attempts is failed instead."""
    return leases.claim(
        DetectionJob,
        db_session=db_session,
        worker_id=worker_id,
        lease_s=lease_s,
        max_attempts=max_attempts,
        now=now,
    )


def _mine(job: DetectionJob) -> Any:
    return leases.mine(DetectionJob, job)


def report_progress(*, db_session: Session, job: DetectionJob, done: int, total: int, lease_s: float) -> bool:
    """Store progress and renew the lease; False if the job is no longer this claim's."""
    result = db_session.execute(
        update(DetectionJob)
        .where(_mine(job))
        .values(
            progress={"done": done, "total": total},
            claimed_until=utcnow() + timedelta(seconds=lease_s),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


def finish(
    *,
    db_session: Session,
    job: DetectionJob,
    result: DetectResponse | None = None,
    error: str | None = None,
    retry: bool = False,
) -> bool:
    """Succeed (``result``), fail (``error``) or give the job back to the queue (``retry``)."""
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
        if result is not None:
            values["result"] = result.model_dump(mode="json")
            values["progress"] = {"done": result.series_scanned, "total": result.series_scanned}
        if error is not None:
            values["error"] = error[:MAX_ERROR_CHARS]
    updated = db_session.execute(
        update(DetectionJob).where(_mine(job)).values(**values).execution_options(synchronize_session=False)
    )
    return bool(rowcount(updated))
