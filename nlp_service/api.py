"""The API surface: domain routers under ``/v1`` plus ``/health``, ``/info`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nlp_service import __version__
from nlp_service.classify.schemas import DEFAULT_INCLUDE, MAX_TEXT_CHARS, MAX_TEXTS
from nlp_service.classify.views import router as classify_router
from nlp_service.comments.views import router as comments_router
from nlp_service.deps import StateDep
from nlp_service.errors import error_body
from nlp_service.insights.views import router as insights_router
from nlp_service.search.views import router as search_router
from nlp_service.webhooks.views import document_webhooks
from nlp_service.webhooks.views import router as webhooks_router

ops_router = APIRouter(tags=["operations"])


@ops_router.get("/health")
async def health(state: StateDep) -> JSONResponse:
    """200 once models are loaded and warmed up, 503 before (or if loading failed)."""
    if state.ready:
        return JSONResponse({"status": "ok"})
    body = error_body(state.load_error or "models are still loading", "not_ready")
    body["status"] = "failed" if state.load_error else "loading"
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


@ops_router.get("/info")
async def info(state: StateDep) -> dict:
    """Service version, loaded models and their versions, request limits and batching settings."""
    settings = state.settings
    out: dict = {
        "service": "nlp_service",
        "version": __version__,
        "ready": state.ready,
        "limits": {
            "max_texts_per_request": MAX_TEXTS,
            "max_text_chars": MAX_TEXT_CHARS,
            "max_batch_size": settings.max_batch_size,
            "max_wait_ms": settings.max_wait_ms,
            "max_queue_texts": settings.max_queue_texts,
        },
        "default_include": list(DEFAULT_INCLUDE),
    }
    if state.engine is not None:
        enc = state.engine.encoder.info
        out["encoder"] = {
            "name": enc.name,
            "sha256": enc.sha256,
            "dim": enc.dim,
            "max_tokens": enc.max_length,
            "quantized": enc.quantized,
        }
        out["model_versions"] = state.engine.models.versions
    return out


@ops_router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    """Prometheus exposition format."""
    if state.batcher is not None:
        state.metrics.queue_depth.set(state.batcher.pending)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def include_routers(app: FastAPI) -> None:
    """Compose the operational endpoints and every domain router under /v1."""
    app.include_router(ops_router)
    v1 = APIRouter(prefix="/v1")
    v1.include_router(classify_router)
    v1.include_router(comments_router)
    v1.include_router(search_router)
    v1.include_router(insights_router)
    v1.include_router(webhooks_router)
    app.include_router(v1)
    document_webhooks(app)
