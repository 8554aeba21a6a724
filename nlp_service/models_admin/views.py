"""``GET /v1/models`` and ``POST /v1/models/reload`` (admin)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from nlp_service.deps import EngineDep
from nlp_service.models_admin import service
from nlp_service.models_admin.schemas import ModelsResponse, ReloadResponse

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=ModelsResponse)
async def list_models(engine: EngineDep) -> ModelsResponse:
    """Versions of every head with their metrics, the registry's active flag and what is served now."""
    return await asyncio.to_thread(service.get_all, engine=engine)


@router.post("/reload", response_model=ReloadResponse)
async def reload_models(engine: EngineDep) -> ReloadResponse:
    """Serve the registry's active versions now, without dropping requests in flight."""
    return await asyncio.to_thread(service.reload, engine=engine)
