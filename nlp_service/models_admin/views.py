"""``GET /v1/models``, ``POST /v1/models/reload`` and promote/rollback of a task's version (admin)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path

from nlp_service.deps import EngineDep, SessionFactoryDep, in_transaction
from nlp_service.errors import ErrorResponse, OpenApiResponses
from nlp_service.jobs import service as jobs
from nlp_service.models_admin import service
from nlp_service.models_admin.schemas import ModelsResponse, PromoteRequest, ReloadResponse

router = APIRouter(prefix="/models", tags=["models"])

Task = Annotated[str, Path(min_length=1, max_length=40, description="A head task (sentiment, emotion, ...)")]
REFUSED: OpenApiResponses = {
    404: {"model": ErrorResponse, "description": "No such task"},
    409: {"model": ErrorResponse, "description": "Unknown version, nothing to roll back to, or not servable"},
}


@router.get("", response_model=ModelsResponse)
async def list_models(engine: EngineDep) -> ModelsResponse:
    """Versions of every head with their metrics, the registry's active flag and what is served now."""
    return await asyncio.to_thread(service.get_all, engine=engine)


@router.post("/reload", response_model=ReloadResponse)
async def reload_models(engine: EngineDep) -> ReloadResponse:
    """Serve the registry's active versions now, without dropping requests in flight."""
    return await asyncio.to_thread(service.reload, engine=engine)


@router.post("/{task}/promote", response_model=ReloadResponse, responses=REFUSED)
async def promote_model(
    task: Task, body: PromoteRequest, engine: EngineDep, sessions: SessionFactoryDep
) -> ReloadResponse:
    """Make a version of a task active in the registry and serve it now (409 and no change if it cannot be
    served); the stored comments are then re-scored by a background job (``rescore_job``)."""
    result = await asyncio.to_thread(service.promote, engine=engine, task=task, version=body.version)
    return await _queue_rescore(result, sessions)


@router.post("/{task}/rollback", response_model=ReloadResponse, responses=REFUSED)
async def rollback_model(task: Task, engine: EngineDep, sessions: SessionFactoryDep) -> ReloadResponse:
    """Re-activate the task's previously active version and serve it now; the stored comments are then
    re-scored by a background job (``rescore_job``)."""
    result = await asyncio.to_thread(service.promote, engine=engine, task=task, version=None)
    return await _queue_rescore(result, sessions)


async def _queue_rescore(result: ReloadResponse, sessions: SessionFactoryDep) -> ReloadResponse:
    """A change of the served heads queues one ``rescore`` job (a queued one already covers it)."""
    if not result.changed:
        return result
    job_id = await in_transaction(
        sessions, lambda s: jobs.submit_once(db_session=s, kind="rescore", params={}).id
    )
    return result.model_copy(update={"rescore_job": job_id})
