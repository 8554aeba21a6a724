"""Long detection re-scans as durable jobs (kind ``detect``): ``POST /v1/detect`` with a ``lookback_s``
above ``detect_sync_max_lookback_s`` queues one (202) and a worker's ``background-jobs`` runs it.

A re-scan is one slice: the detection run (``flows.run_detection``) reads the series, then writes alerts
under the detector's lock in its own transaction; running it again is safe (alerts are merged under that
lock), so a job whose worker died is simply run again by another worker once its lease has passed. Its
progress (series scanned) is reported while it reads, which renews the lease; a cancel is seen there. While
the stored comments are re-tagged the job waits (it would scan a mixed history).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nlp_service.anomaly import flows
from nlp_service.anomaly.schemas import DetectJobOut, DetectJobProgress, DetectRequest, DetectResponse
from nlp_service.errors import NotFound, ServiceError
from nlp_service.jobs import service as jobs
from nlp_service.jobs.kinds import JobDeferred, JobError, JobKind, JobRun, JobStopped, Step, register
from nlp_service.jobs.tables import Job
from nlp_service.timestamps import utcnow
from nlp_service.topics.provider import active_labels

KIND_NAME = "detect"
PROGRESS_EVERY_S = 1.0


def submit(
    *, db_session: Session, request: DetectRequest, created_by: str | None = None, now: datetime | None = None
) -> Job:
    """Queue a re-scan; ``at`` is pinned to now when omitted, so the job scans the period asked for."""
    now = now or utcnow()
    pinned = request.model_copy(update={"at": request.at or now})
    return jobs.submit(
        db_session=db_session,
        kind=KIND_NAME,
        params=pinned.model_dump(mode="json"),
        created_by=created_by,
        now=now,
    )


def get(*, db_session: Session, job_id: str) -> Job:
    job = jobs.get(db_session=db_session, job_id=job_id)
    if job.kind != KIND_NAME:
        raise NotFound(f"detection job {job_id!r} not found", detail=[{"field": "id", "message": "unknown"}])
    return job


def to_out(job: Job) -> DetectJobOut:
    return DetectJobOut(
        id=job.id,
        status=job.status,  # type: ignore[arg-type]
        request=DetectRequest.model_validate(job.params),
        progress=DetectJobProgress(done=job.done, total=max(job.total, job.done)),
        result=DetectResponse.model_validate(job.result["response"]) if job.result else None,
        error=job.error,
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


# -- the kind ---------------------------------------------------------------------------------------------
def plan(run: JobRun[DetectRequest], db_session: Session) -> tuple[int, dict[str, Any]]:
    return 0, {"response": None}


def read(run: JobRun[DetectRequest], db_session: Session) -> DetectRequest | None:
    if run.cursor.get("response") is not None:
        return None
    if flows.retag_in_progress(db_session=db_session) is not None:
        raise JobDeferred("the stored comments are being re-tagged")
    return run.params


def compute(run: JobRun[DetectRequest], request: DetectRequest) -> DetectResponse:
    """The detection run itself (it writes its alerts in its own transaction, under the detector's lock)."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = now
        if not run.report(done, total):
            raise JobStopped

    try:
        return flows.run_detection(
            sessions=run.sessions,
            settings=run.settings,
            at=request.at,
            lookback_s=request.lookback_s,
            buckets=request.buckets,
            topic_labels=active_labels(run.settings, run.sessions),
            progress=progress,
        )
    except ServiceError as exc:  # the request itself is wrong: no point retrying
        raise JobError(str(exc)) from exc


def write(run: JobRun[DetectRequest], db_session: Session, response: DetectResponse) -> Step:
    return Step(cursor={"response": response.model_dump(mode="json")}, done=response.series_scanned)


def finish(run: JobRun[DetectRequest], db_session: Session) -> dict[str, Any]:
    return {"response": run.cursor["response"]}


KIND = register(
    JobKind(
        name=KIND_NAME,
        scope="alerts",
        params=DetectRequest,
        plan=plan,
        read=read,
        compute=compute,
        write=write,
        finish=finish,
        description="a long detection re-scan (POST /v1/detect with a long lookback_s)",
    )
)
