"""The API surface: domain routers under ``/v1`` plus ``/health``, ``/info`` and ``/metrics``.

Access rule: every ``/v1`` router is included with the scope its endpoints need, in one line::

    v1.include_router(router, dependencies=[require_scope("classify")])
    v1.include_router(router, dependencies=[require_scope("search", write="ingest")])  # GET vs others
    v1.include_router(router, dependencies=[require_scope("search", by_endpoint={"topic_series": "alerts"})])

Scopes: classify, search, ingest, alerts, webhooks, admin, topics (each grants only itself). A ``/v1`` route
without a scope makes ``create_app`` fail. ``/health``, ``/info``, ``/metrics``, ``/docs`` and
``/openapi.json`` stay open (they expose no comment data or secrets; restrict ``/metrics`` at the network
level if needed). ``/ui`` (the dashboard, ``nlp_service.ui``) serves its pages to a signed-in session only and
calls ``/v1`` like any client.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nlp_service import __version__
from nlp_service.anomaly.views import router as alerts_router
from nlp_service.auth.deps import require_scope, route_scopes
from nlp_service.auth.views import router as keys_router
from nlp_service.classify.schemas import DEFAULT_INCLUDE
from nlp_service.classify.views import router as classify_router
from nlp_service.comments.views import router as comments_router
from nlp_service.deps import StateDep
from nlp_service.docs import install_docs
from nlp_service.errors import ErrorResponse, error_body
from nlp_service.incidents.views import router as incidents_router
from nlp_service.insights.views import router as insights_router
from nlp_service.jobs.views import router as jobs_router
from nlp_service.models_admin.views import router as models_router
from nlp_service.search.views import router as search_router
from nlp_service.topics.suggestion_views import router as suggestions_router
from nlp_service.topics.taxonomy_views import router as taxonomy_router
from nlp_service.topics.views import router as topics_router
from nlp_service.ui.views import install_ui
from nlp_service.webhooks.views import document_webhooks
from nlp_service.webhooks.views import router as webhooks_router

ops_router = APIRouter(tags=["operations"])


ERROR_STATUSES = {
    400: "Malformed request (e.g. invalid JSON)",
    401: "Missing, unknown or revoked API key",
    403: "The API key lacks this endpoint's scope; with keys off, a non-loopback client or untrusted Host",
    404: "Unknown resource (comment, alert, incident, webhook, delivery, key, topic)",
    409: "Conflict with the stored state (idempotency, lifecycle transition, refused model)",
    413: "Request body too large",
    415: "Body is not application/json",
    422: "Invalid input",
    429: "Rate limit or inference queue full (see Retry-After)",
    503: "Models still loading, a dependency unavailable, or the request timed out (see Retry-After)",
}
V1_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorResponse, "description": text} for status, text in ERROR_STATUSES.items()
}


@ops_router.get("/health", responses={503: {"model": ErrorResponse, "description": "Not ready"}})
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
            "max_texts_per_request": settings.max_texts_per_request,
            "max_text_chars": settings.max_text_chars,
            "max_batch_size": settings.max_batch_size,
            "max_wait_ms": settings.max_wait_ms,
            "max_queue_texts": settings.max_queue_texts,
            "max_queue_texts_per_client": settings.max_queue_texts_per_client,
            "max_sentence_chars_per_request": settings.max_sentence_chars_per_request,
            "max_sentences_per_request": settings.max_sentences_per_request,
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
            "runtime": state.engine.encoder.runtime,
            "adapter": enc.adapter,
            "base_sha256": enc.base_sha256 or enc.sha256,
        }
        out["model_versions"] = state.engine.models.versions
    return out


@ops_router.get("/metrics", response_class=PlainTextResponse)
async def metrics(state: StateDep) -> Response:
    """Prometheus exposition format."""
    if state.batcher is not None:
        state.metrics.queue_depth.set(state.batcher.pending)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def operation_id(route: APIRoute) -> str:
    """OpenAPI operation id: the endpoint function's name (``classify``, ``list_alerts``, ``get_alert``), so
    generated clients read well; ``tests/api/test_operation_ids.py`` keeps them unique and snake_case."""
    return route.name


def include_routers(app: FastAPI) -> None:
    """Compose the operational endpoints and every domain router under /v1."""
    app.include_router(ops_router)
    install_docs(app)
    v1 = APIRouter(prefix="/v1", responses=V1_RESPONSES)
    v1.include_router(classify_router, dependencies=[require_scope("classify")])
    v1.include_router(comments_router, dependencies=[require_scope("search", write="ingest")])
    v1.include_router(search_router, dependencies=[require_scope("search")])
    v1.include_router(insights_router, dependencies=[require_scope("search")])
    v1.include_router(suggestions_router, dependencies=[require_scope("search", write="topics")])
    v1.include_router(taxonomy_router, dependencies=[require_scope("search", write="topics")])
    v1.include_router(
        topics_router, dependencies=[require_scope("search", by_endpoint={"topic_series": "alerts"})]
    )
    v1.include_router(keys_router, dependencies=[require_scope("admin")])
    v1.include_router(webhooks_router, dependencies=[require_scope("webhooks")])
    v1.include_router(alerts_router, dependencies=[require_scope("alerts")])
    v1.include_router(incidents_router, dependencies=[require_scope("alerts")])
    v1.include_router(models_router, dependencies=[require_scope("admin")])
    v1.include_router(jobs_router, dependencies=[require_scope("search", write="admin")])
    app.include_router(v1)
    install_ui(app)
    document_webhooks(app)
    check_scopes(app)


def check_scopes(app: FastAPI) -> None:
    """Fail fast if a ``/v1`` route was included without a scope (it would be open to any key)."""
    for route in route_scopes(app):
        if route.path.startswith("/v1") and route.scope is None:
            raise RuntimeError(
                f"{route.method} {route.path} has no scope: include its router with "
                "dependencies=[require_scope(...)] in nlp_service/api.py"
            )


def route_templates(app: FastAPI) -> dict[object, str]:
    """Endpoint function -> full path template (``/v1/comments/{comment_id}``), for metric labels."""
    from fastapi.routing import iter_route_contexts

    templates: dict[object, str] = {}
    for route in iter_route_contexts(app.routes):
        endpoint, path = getattr(route, "endpoint", None), getattr(route, "path", None)
        if endpoint is not None and path is not None:
            templates[endpoint] = path
    return templates
