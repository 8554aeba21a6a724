"""``/v1/jobs``: durable background jobs (bulk import, re-scoring, re-embedding). Reads need scope
``search``; submitting and cancelling need ``admin``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from nlp_service.auth.deps import CurrentPrincipal
from nlp_service.deps import JsonBody, SessionFactoryDep, in_transaction
from nlp_service.errors import ErrorResponse, InvalidInput, OpenApiResponses
from nlp_service.jobs import service
from nlp_service.jobs.kinds import get_kind
from nlp_service.jobs.schemas import JobIn, JobListQuery, JobOut, JobPage, JobProgress
from nlp_service.jobs.tables import Job

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[str, Path(min_length=1, max_length=40, description="The job's id (job_...)")]
NOT_FOUND: OpenApiResponses = {404: {"model": ErrorResponse, "description": "Unknown job"}}


def to_out(job: Job) -> JobOut:
    total = max(job.total, job.done)
    fraction = 1.0 if job.status == "succeeded" else (job.done / total if total else 0.0)
    return JobOut(
        id=job.id,
        kind=job.kind,
        status=job.status,  # type: ignore[arg-type]
        params=job.params,
        progress=JobProgress(done=job.done, total=total, fraction=round(fraction, 4), slices=job.slices),
        result=job.result,
        error=job.error,
        cancel_requested=job.cancel_requested,
        attempts=job.attempts,
        created_by=job.created_by,
        created_at=job.created_at,
        started_at=job.started_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
    )


def accepted(job: JobOut) -> JSONResponse:
    """202 with the job and its ``Location``."""
    return JSONResponse(
        job.model_dump(mode="json"), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"}
    )


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    dependencies=[JsonBody],
    responses={202: {"description": "Queued; follow Location for progress"}},
)
async def submit_background_job(
    body: JobIn, sessions: SessionFactoryDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Queue a re-scoring or re-embedding job (202); ``GET /v1/jobs/{id}`` shows its progress."""
    kind = get_kind(body.kind)
    try:
        params = kind.params.model_validate(body.params).model_dump(mode="json")
    except ValidationError as exc:
        raise InvalidInput(
            f"invalid params for a {body.kind} job",
            detail=[
                {"field": ".".join(["params", *map(str, e["loc"])]), "message": e["msg"]}
                for e in exc.errors()
            ],
        ) from exc
    job = await in_transaction(
        sessions,
        lambda s: to_out(
            service.submit(db_session=s, kind=body.kind, params=params, created_by=principal.key_id)
        ),
    )
    return accepted(job)


@router.get("", response_model=JobPage)
async def list_background_jobs(
    query: Annotated[JobListQuery, Query()], sessions: SessionFactoryDep
) -> JobPage:
    """Jobs, newest first, by kind and status; follow ``next_before`` for older ones."""

    def work(s: Any) -> JobPage:
        jobs = service.list_jobs(
            db_session=s,
            kinds=[query.kind] if query.kind else None,
            status=query.status,
            limit=query.limit,
            before=query.before,
        )
        more = len(jobs) == query.limit
        return JobPage(jobs=[to_out(j) for j in jobs], next_before=jobs[-1].created_at if more else None)

    return await in_transaction(sessions, work)


@router.get("/{job_id}", response_model=JobOut, responses=NOT_FOUND)
async def get_background_job(job_id: JobId, sessions: SessionFactoryDep) -> JobOut:
    """A job: status, progress (done of total, committed slices), result or error, attempts."""
    return await in_transaction(sessions, lambda s: to_out(service.get(db_session=s, job_id=job_id)))


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    responses={**NOT_FOUND, 409: {"model": ErrorResponse, "description": "The job already finished"}},
)
async def cancel_background_job(job_id: JobId, sessions: SessionFactoryDep) -> JobOut:
    """Cancel a job: a queued one at once, a running one after its current slice (committed slices stay
    done; the job ends ``cancelled``). 409 if it already finished."""
    return await in_transaction(sessions, lambda s: to_out(service.cancel(db_session=s, job_id=job_id)))
