"""FastAPI dependency aliases.

The dependencies are ``async def``: they only read the request, and FastAPI runs a plain ``def`` dependency
on a worker thread, a thread hop per dependency per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.errors import UnsupportedMediaType
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


async def get_db(request: Request) -> sessionmaker[Session]:
    return request.app.state.nlp.require_db()


DbDep = Annotated[sessionmaker[Session], Depends(get_db)]


async def in_transaction(factory: sessionmaker[Session], fn: Callable[[Session], T]) -> T:
    """Run ``fn(session)`` in one transaction on a worker thread (commit on success, roll back on error),
    so that blocking database work never runs on the event loop. Views own transactions through this."""

    def work() -> T:
        with session_scope(factory) as session:
            return fn(session)

    return await run_in_threadpool(work)
