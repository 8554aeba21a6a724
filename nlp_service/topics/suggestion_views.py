"""``GET /v1/topics/suggestions`` (scope ``search``) and ``POST /v1/topics/suggestions/refresh`` (scope
``topics``): topic discovery's suggestions, and a discovery run now (what the worker's ``topic-discovery``
job does every ``discovery_interval_s``).

Mount with ``require_scope("search", write="topics")``. Views own the transaction (``in_transaction``) and
run the blocking work in the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nlp_service.deps import SessionFactoryDep, SettingsDep, in_transaction
from nlp_service.topics import suggestions
from nlp_service.topics.flows import run_discovery
from nlp_service.topics.suggestion_schemas import (
    RefreshRequest,
    RefreshResponse,
    SuggestionsQuery,
    SuggestionsResponse,
)

router = APIRouter(tags=["topics"])


@router.get("/topics/suggestions", response_model=SuggestionsResponse)
async def list_suggestions(
    query: Annotated[SuggestionsQuery, Query()], sessions: SessionFactoryDep
) -> SuggestionsResponse:
    """Clusters of comments no topic claims (the latest discovery run's, by default ``status=open``), with
    keywords, representative comments, size, growth against the previous window and mean sentiment;
    ``start``/``end`` keep those whose window overlaps."""

    def work(s: Session) -> SuggestionsResponse:
        rows = suggestions.get_all(db_session=s, query=query)
        return SuggestionsResponse(suggestions=suggestions.to_out(db_session=s, rows=rows))

    return await in_transaction(sessions, work)


@router.post("/topics/suggestions/refresh", response_model=RefreshResponse)
async def refresh_suggestions(
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    body: Annotated[RefreshRequest | None, Body()] = None,
) -> RefreshResponse:
    """Run discovery now over the window ending at ``at`` (default now, never in the future: 422) of
    ``window_s`` (default ``discovery_window_s``): replaces the open suggestions and raises an
    ``emerging_topic`` alert for each fast-growing cluster that has no open one yet."""
    req = body or RefreshRequest()
    return await run_in_threadpool(
        run_discovery, sessions=sessions, settings=settings, at=req.at, window_s=req.window_s
    )
