"""Running a claimed job slice by slice (the worker job ``background-jobs``, in ``jobs.jobs``, claims them).

Each slice: ``read`` in a short transaction, ``compute`` outside any transaction, then one write
transaction that starts with the fence (:func:`service.fence`), checks the job's cursor is still the one
read from, applies ``write`` and records the slice (:func:`service.committed`). A worker killed mid-slice
leaves the job running with a lease; once the lease passes another worker claims it and resumes from the
last committed cursor. A cancel is seen at the next fence. Errors: :class:`JobError` fails the job; any
other error puts it back in the queue (the claim counted) until ``job_max_attempts``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from nlp_service.jobs import service
from nlp_service.jobs.kinds import (
    JobDeferred,
    JobError,
    JobKind,
    JobRun,
    JobStopped,
    get_kind,
)
from nlp_service.jobs.tables import Job
from nlp_service.worker import JobContext

log = logging.getLogger(__name__)


def run_claimed(ctx: JobContext, claimed: Job) -> str:
    """Run a claimed job to its end; returns how the claim ended: succeeded, failed, cancelled, retry,
    released (the worker is stopping), deferred (not now) or lost (another worker holds it now)."""
    error: str | None = None
    try:
        kind = get_kind(claimed.kind)
        return _run(ctx, kind, claimed)
    except JobStopped:
        return _stopped(ctx, claimed)
    except JobDeferred:
        with ctx.session() as db_session:
            return "deferred" if service.release(db_session=db_session, job=claimed) else "lost"
    except JobError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:
        log.exception("job %s (%s) failed", claimed.id, claimed.kind)
        status, error = "queued", f"{type(exc).__name__}: {exc}"
    with ctx.session() as db_session:
        if not service.finish(db_session=db_session, job=claimed, status=status, error=error):
            return "lost"
    return "retry" if status == "queued" else status


def _resources(ctx: JobContext) -> dict[str, Any]:
    return ctx.state.setdefault("resources", {})


def _stopped(ctx: JobContext, claimed: Job) -> str:
    """The fence failed: the job was cancelled (mark it so, if still ours) or another worker holds it."""
    with ctx.session() as db_session:
        current = db_session.get(Job, claimed.id)
        if current is not None and current.cancel_requested:
            if service.finish(db_session=db_session, job=claimed, status="cancelled"):
                return "cancelled"
    return "lost"


def _run(ctx: JobContext, kind: JobKind[Any], claimed: Job) -> str:
    settings = ctx.settings
    lease_s = settings.job_lease_s
    try:
        params = kind.params.model_validate(claimed.params)
    except ValueError as exc:
        raise JobError(f"invalid params for a {kind.name} job: {exc}") from exc
    run: JobRun[Any] = JobRun(
        job_id=claimed.id,
        params=params,
        cursor=dict(claimed.cursor or {}),
        settings=settings,
        resources=_resources(ctx),
        sessions=ctx.sessionmaker,
        done=claimed.done,
        total=claimed.total,
    )

    def report(done: int, total: int) -> bool:
        with ctx.session() as db_session:
            return service.progress(
                db_session=db_session, job=claimed, done=done, total=total, lease_s=lease_s
            )

    run.report = report
    if claimed.cursor is None:
        with ctx.session() as db_session:
            fenced = service.fence(db_session=db_session, job=claimed, lease_s=lease_s)
            if fenced:
                total, cursor = kind.plan(run, db_session)
                service.planned(db_session=db_session, job=claimed, total=total, cursor=cursor)
        if not fenced:
            return _stopped(ctx, claimed)
        run.cursor, run.total = dict(cursor), total
    while True:
        if ctx.stopping.is_set():
            with ctx.session() as db_session:
                return "released" if service.release(db_session=db_session, job=claimed) else "lost"
        t0 = time.perf_counter()
        with ctx.session() as db_session:
            batch = kind.read(run, db_session)
        if batch is None:
            with ctx.session() as db_session:
                fenced = service.fence(db_session=db_session, job=claimed, lease_s=lease_s)
                if fenced:
                    result = {**kind.finish(run, db_session), "done": run.done}
                    service.finish(db_session=db_session, job=claimed, status="succeeded", result=result)
            return "succeeded" if fenced else _stopped(ctx, claimed)
        work = kind.compute(run, batch)
        with ctx.session() as db_session:
            fenced = service.fence(db_session=db_session, job=claimed, lease_s=lease_s)
            if fenced:
                step = kind.write(run, db_session, work)
                service.committed(db_session=db_session, job=claimed, step=step)
        if not fenced:  # after that transaction ended: on SQLite it holds the write lock
            return _stopped(ctx, claimed)
        run.cursor, run.done = dict(step.cursor), claimed.done
        run.total = claimed.total
        if ctx.metrics is not None:
            ctx.metrics.job_slice_duration.labels(kind=kind.name).observe(time.perf_counter() - t0)
