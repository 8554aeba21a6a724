"""FastAPI dependency aliases.

The dependencies are ``async def``: they only read the request, and FastAPI runs a plain ``def`` dependency
on a worker thread, a thread hop per dependency per request.

FastAPI resolves dependencies before it validates the body, so a dependency that raises (503 while models
load) would hide a 422. Views with a body therefore call :func:`get_engine` / :func:`get_batcher` after
validation (``await get_batcher(request)``); views without one take ``EngineDep`` / ``BatcherDep``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.errors import NotReady, UnsupportedMediaType
from nlp_service.hardening.secretbox import SecretBox
from nlp_service.inference.batcher import MicroBatcher
from nlp_service.inference.engine import Analysis
from nlp_service.inference.protocol import AnalysisEngine
from nlp_service.search.service import SearchService
from nlp_service.state import AppState


async def get_state(request: Request) -> AppState:
    return request.app.state.nlp


async def get_settings(request: Request) -> Settings:
    return request.app.state.nlp.settings


async def require_json(request: Request) -> None:
    """Refuse bodies that are not declared as JSON (415), before parsing them."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"content-type must be application/json, got {content_type or 'none'!r}",
            detail=[{"field": "content-type", "message": "expected application/json"}],
        )


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JsonBody = Depends(require_json)

T = TypeVar("T")


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    """The session factory (a view runs each transaction through :func:`in_transaction`); 503 until open."""
    return request.app.state.nlp.require_db()


async def get_engine(request: Request) -> AnalysisEngine:
    """The loaded engine, or 503 while models are loading (or failed to load)."""
    state: AppState = request.app.state.nlp
    if not state.ready or state.engine is None:
        raise NotReady(state.load_error or "models are still loading")
    return state.engine


async def get_loaded_engine(request: Request) -> AnalysisEngine | None:
    """The engine once loaded, else None (for readers that fall back to the configured files)."""
    state: AppState = request.app.state.nlp
    return state.engine if state.ready else None


async def get_batcher(request: Request) -> MicroBatcher[str, Analysis]:
    """The micro-batcher in front of the engine, or 503 while models are loading (or failed to load)."""
    state: AppState = request.app.state.nlp
    if not state.ready or state.batcher is None:
        raise NotReady(state.load_error or "models are still loading")
    return state.batcher


async def get_search(request: Request) -> SearchService:
    """The search service (vector + keyword index), or 503 before it is open."""
    search = request.app.state.nlp.search
    if search is None:
        raise NotReady("the search index is not open yet")
    return search


async def get_secret_box(request: Request) -> SecretBox:
    """The box sealing stored secrets (loaded at start-up, or on first use)."""
    return request.app.state.nlp.require_secret_box()


SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
EngineDep = Annotated[AnalysisEngine, Depends(get_engine)]
LoadedEngineDep = Annotated[AnalysisEngine | None, Depends(get_loaded_engine)]
BatcherDep = Annotated[MicroBatcher[str, Analysis], Depends(get_batcher)]
SearchDep = Annotated[SearchService, Depends(get_search)]
SecretBoxDep = Annotated[SecretBox, Depends(get_secret_box)]


async def in_transaction(factory: sessionmaker[Session], fn: Callable[[Session], T]) -> T:
    """Run ``fn(session)`` in one transaction on a worker thread (commit on success, roll back on error),
    so that blocking database work never runs on the event loop. Views own transactions through this."""

    def work() -> T:
        with session_scope(factory) as session:
            return fn(session)

    return await run_in_threadpool(work)
