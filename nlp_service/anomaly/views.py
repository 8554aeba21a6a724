"""``/v1/alerts`` (case changes in ``case_views``), ``/v1/detect`` (+ ``/v1/detect/jobs/{id}``) and
``/v1/detect/series`` (scope ``alerts``).

Views own the transaction (``in_transaction``: one session, committed before the response) and run the
blocking work in the thread pool.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from nlp_service.anomaly import detect_jobs, flows, posted, service
from nlp_service.anomaly.case_views import AlertId
from nlp_service.anomaly.case_views import router as case_router
from nlp_service.anomaly.schemas import (
    AlertOut,
    AlertPage,
    AlertsQuery,
    DetectJobOut,
    DetectRequest,
    DetectResponse,
    SeriesDetectRequest,
    SeriesDetectResponse,
)
from nlp_service.auth.deps import CurrentPrincipal
from nlp_service.deps import JsonBody, SessionFactoryDep, SettingsDep, in_transaction
from nlp_service.errors import ErrorResponse, OpenApiResponses
from nlp_service.topics.provider import TopicLabelsDep

router = APIRouter(tags=["alerts"])
router.include_router(case_router)  # first: /alerts/feedback before /alerts/{alert_id}

NOT_FOUND: OpenApiResponses = {404: {"model": ErrorResponse, "description": "No such alert"}}


@router.get("/alerts", response_model=AlertPage)
async def list_alerts(
    query: Annotated[AlertsQuery, Query()],
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
) -> AlertPage:
    """Alerts, newest first; filter by status (new, acknowledged, resolved, open, overdue), topic, kind,
    severity and window (``since``/``until``); paginate with ``limit``/``offset``."""
    return await in_transaction(
        sessions, lambda s: service.get_all(db_session=s, settings=settings, query=query, topic_labels=labels)
    )


@router.get("/alerts/{alert_id}", response_model=AlertOut, responses=NOT_FOUND)
async def get_alert(
    alert_id: AlertId, labels: TopicLabelsDep, settings: SettingsDep, sessions: SessionFactoryDep
) -> AlertOut:
    """One alert with its explanation and representative comments."""
    return await in_transaction(sessions, lambda s: service.one_out(s, alert_id, settings, labels))


JobId = Annotated[str, Path(min_length=1, max_length=40, description="The job's id (job_...)")]
ACCEPTED: OpenApiResponses = {
    202: {"model": DetectJobOut, "description": "A long re-scan, queued as a background job"}
}


@router.post("/detect", response_model=DetectResponse, responses=ACCEPTED)
async def detect_now(
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    principal: CurrentPrincipal,
    body: Annotated[DetectRequest | None, Body()] = None,
) -> Any:
    """Run alert detection now (what the worker's ``alert-detection`` job does every bucket); ``at`` (not
    in the future: 422) and ``lookback_s`` re-scan a past period. Returns what was scanned and the alerts
    created/updated; a ``lookback_s`` above ``detect_sync_max_lookback_s`` (default 7 days) is queued for
    the worker instead: 202 with the job, ``Location: /v1/detect/jobs/{id}`` (also ``/v1/jobs/{id}``, where
    it can be cancelled)."""
    req = body or DetectRequest()
    flows.check_at(req.at)
    if (req.lookback_s or 0) > settings.detect_sync_max_lookback_s:
        job = await in_transaction(
            sessions,
            lambda s: detect_jobs.to_out(
                detect_jobs.submit(db_session=s, request=req, created_by=principal.key_id)
            ),
        )
        return JSONResponse(
            job.model_dump(mode="json"), status_code=202, headers={"Location": f"/v1/detect/jobs/{job.id}"}
        )
    return await run_in_threadpool(
        flows.run_detection,
        sessions=sessions,
        settings=settings,
        at=req.at,
        lookback_s=req.lookback_s,
        buckets=req.buckets,
        topic_labels=labels,
    )


@router.get("/detect/jobs/{job_id}", response_model=DetectJobOut, responses=NOT_FOUND)
async def get_detect_job(job_id: JobId, sessions: SessionFactoryDep) -> DetectJobOut:
    """A background detection run: status (queued, running, succeeded, failed, cancelled), progress in series
    scanned, and its result (what ``POST /v1/detect`` answers) or error."""
    return await in_transaction(
        sessions, lambda s: detect_jobs.to_out(detect_jobs.get(db_session=s, job_id=job_id))
    )


@router.post("/detect/series", response_model=SeriesDetectResponse, dependencies=[JsonBody])
async def detect_series(body: SeriesDetectRequest, settings: SettingsDep) -> SeriesDetectResponse:
    """Run the detectors on a posted series (bucket starts + values + bucket seconds): change points,
    spikes, episodes and the baseline. Values must be finite and non-negative, timestamps strictly increasing
    on one bucket grid, at least ``alert_min_series_points`` points."""
    return await run_in_threadpool(posted.detect_posted_series, request=body, settings=settings)
