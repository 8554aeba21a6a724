"""App factory. Start-up order: serve /health (503) at once, load models, warm up, then report ready."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from nlp_service import __version__
from nlp_service.api import include_routers, operation_id, route_templates
from nlp_service.auth.deps import Auth
from nlp_service.config import Settings
from nlp_service.errors import install_error_handlers
from nlp_service.hardening.middleware import install_middleware
from nlp_service.inference.batcher import BatchStats, MicroBatcher
from nlp_service.inference.engine import Engine
from nlp_service.inference.protocol import AnalysisEngine
from nlp_service.state import AppState

log = logging.getLogger(__name__)


def _load_engine(settings: Settings) -> Engine:
    engine = Engine(settings)
    engine.warm_up()
    return engine


async def start_engine(state: AppState, engine: AnalysisEngine | None = None) -> None:
    """Load models off the event loop, warm up, start the batcher and mark the app ready."""
    settings = state.settings
    try:
        t0 = time.perf_counter()
        loaded = engine if engine is not None else await asyncio.to_thread(_load_engine, settings)
        metrics = state.metrics

        def on_batch(stats: BatchStats) -> None:
            metrics.batch_size.observe(stats.size)
            metrics.batch_time.observe(stats.compute_seconds)
            metrics.texts.inc(stats.size)
            for waited in stats.queue_seconds:
                metrics.queue_time.observe(waited)

        batcher: MicroBatcher = MicroBatcher(
            loaded.analyze,
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue_texts,
            max_queue_per_client=settings.max_queue_texts_per_client,
            on_batch=on_batch,
        )
        await batcher.start()
        from nlp_service.topics.changes import sync_active, watch_taxonomy

        sessions = state.require_db()
        await asyncio.to_thread(sync_active, sessions, loaded)  # seed version 1; serve the active version
        if state.search is not None:  # the index holds this encoder's vectors only
            await asyncio.to_thread(state.search.use_encoder, loaded.models.versions["encoder"])
        state.engine, state.batcher, state.ready = loaded, batcher, True
        if state.worker is not None:  # the embedded worker's jobs use this engine, not a second one
            state.worker.resources["engine"] = loaded
        if settings.registry_poll_s > 0:
            from nlp_service.models_admin.service import watch_registry

            state.registry_watcher = asyncio.create_task(watch_registry(loaded, settings.registry_poll_s))
        if settings.taxonomy_poll_s > 0:
            state.taxonomy_watcher = asyncio.create_task(
                watch_taxonomy(sessions, loaded, settings.taxonomy_poll_s)
            )
        log.info("models ready in %.1fs: %s", time.perf_counter() - t0, loaded.models.versions)
    except Exception as exc:  # /health reports it; the process stays up for inspection
        state.load_error = f"model loading failed: {exc}"
        log.exception("model loading failed")


def open_storage(state: AppState) -> None:
    """Migrate and open the database, then open the search index (caught up from the DB in the background)."""
    from nlp_service.db import make_engine, make_sessionmaker, upgrade
    from nlp_service.hardening.files import private_dir
    from nlp_service.search.service import SearchService

    settings = state.settings
    private_dir(settings.var_dir)  # 0700: the index, the SQLite file and the key file live here
    state.require_secret_box()  # a bad NLP_SECRET_KEYS stops the start, not a later request
    url = settings.resolved_database_url()
    if settings.migrate_on_start:
        upgrade(url, "heads")  # every branch, should two migrations share a parent
    state.db = make_sessionmaker(make_engine(url, sqlite_synchronous=settings.sqlite_synchronous))
    state.search = SearchService(settings, state.db)
    state.search.open()


def close_storage(state: AppState) -> None:
    """Save the search index and release database connections."""
    if state.search is not None:
        state.search.close()
    if state.db is not None:
        bind = state.db.kw.get("bind")
        if bind is not None:
            bind.dispose()


async def start_worker(state: AppState) -> None:
    """Start the embedded background worker (webhook delivery, detection) if ``run_worker_in_process``."""
    if not state.settings.run_worker_in_process:
        return
    from nlp_service.worker import Worker

    shared = {"engine": state.engine} if state.engine is not None else {}
    state.worker = Worker(
        state.settings, sessionmaker=state.db, metrics=state.metrics.worker, resources=shared
    )
    await state.worker.start()


async def stop_worker(state: AppState) -> None:
    """Stop the embedded worker gracefully (in-flight webhook sends finish or go back to the queue)."""
    if state.worker is not None:
        await state.worker.stop()
        state.worker = None


def create_app(settings: Settings | None = None, *, engine: AnalysisEngine | None = None) -> FastAPI:
    """Build the FastAPI app. ``engine`` may be passed in (tests share one loaded engine)."""
    settings = settings or Settings()
    auth = Auth.from_settings(settings)
    state = AppState(settings=settings, auth=auth)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(open_storage, state)
        loader = asyncio.create_task(start_engine(state, engine))
        await start_worker(state)
        await asyncio.to_thread(auth.report_at_startup)
        try:
            yield
        finally:
            loader.cancel()
            for watcher in (state.registry_watcher, state.taxonomy_watcher):
                if watcher is not None:
                    watcher.cancel()
            await stop_worker(state)
            auth.close()
            if state.batcher is not None:
                await state.batcher.stop()
            await asyncio.to_thread(close_storage, state)

    app = FastAPI(
        title="nlp_service",
        version=__version__,
        description="Text analytics for customer feedback: sentiment, emotions, topics, search and alerts.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,  # served offline by nlp_service.docs
        redoc_url=None,
    )
    app.state.nlp = state
    install_error_handlers(app)
    include_routers(app)
    templates = route_templates(app)

    def record_metrics(scope: MutableMapping[str, Any], status: int, seconds: float) -> None:
        path = templates.get(scope.get("endpoint"), "unmatched")
        state.metrics.requests.labels(scope.get("method", ""), path, str(status)).inc()
        state.metrics.latency.labels(scope.get("method", ""), path).observe(seconds)

    install_middleware(
        app, settings, on_complete=record_metrics
    )  # last: the hardening middlewares wrap everything above
    return app
