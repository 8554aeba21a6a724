"""``GET /v1/topics/suggestions`` (scope ``search``) and ``POST /v1/topics/suggestions/refresh`` (scope
``topics``): topic discovery's suggestions, and a discovery run now (what the worker's ``topic-discovery``
job does every ``discovery_interval_s``).

Mount with ``require_scope("search", write="topics")``. Views own the transaction (``in_transaction``) and
run the blocking work in the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nlp_service.deps import EngineDep, SessionFactoryDep, SettingsDep, in_transaction
from nlp_service.errors import Conflict, ErrorResponse, InvalidInput
from nlp_service.topics import edits, suggestions
from nlp_service.topics.changes import apply_change
from nlp_service.topics.flows import run_discovery
from nlp_service.topics.suggestion_schemas import (
    AcceptRequest,
    RefreshRequest,
    RefreshResponse,
    SuggestionsQuery,
    SuggestionsResponse,
)
from nlp_service.topics.suggestion_topic import to_topic
from nlp_service.topics.taxonomy import Taxonomy
from nlp_service.topics.taxonomy_schemas import ChangeOut, ChangeQuery
from nlp_service.topics.taxonomy_views import change_out

router = APIRouter(tags=["topics"])
SuggestionId = Annotated[str, Path(min_length=1, max_length=40, description="A suggestion id")]


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


@router.post(
    "/topics/suggestions/{suggestion_id}/accept",
    response_model=ChangeOut,
    status_code=201,
    responses={
        404: {"model": ErrorResponse, "description": "No such suggestion"},
        409: {
            "model": ErrorResponse,
            "description": "Not open, a taken topic id, or a concurrent change",
        },
    },
)
async def accept_suggestion(
    request: Request,
    suggestion_id: SuggestionId,
    body: AcceptRequest,
    query: Annotated[ChangeQuery, Query()],
    sessions: SessionFactoryDep,
    engine: EngineDep,
) -> ChangeOut:
    """Turn a suggestion into a topic (a new taxonomy version): its keywords make the name and description,
    its representative comments become the topic's taught examples."""
    made: list[str] = []

    def edit(taxonomy: Taxonomy, s: Session) -> Taxonomy:
        row = suggestions.get(db_session=s, suggestion_id=suggestion_id)
        if row.status != "open":
            raise Conflict(
                f"suggestion {suggestion_id!r} is {row.status}; only an open suggestion can be accepted",
                detail=[{"field": "id", "message": row.status}],
            )
        [out] = suggestions.to_out(db_session=s, rows=[row])
        try:
            topic = to_topic(
                keywords=out.keywords,
                texts=[r.text for r in out.representatives],
                topic_id=body.id,
                name=body.name,
                taken_ids=taxonomy.ids,
            )
        except ValueError as exc:
            raise InvalidInput(str(exc), detail=[{"field": "id", "message": str(exc)}]) from exc
        made.append(topic.id)
        return edits.create_topic(taxonomy, topic)

    def accept(s: Session, _version: object) -> None:
        suggestions.mark_accepted(db_session=s, suggestion_id=suggestion_id, topic_id=made[0])

    result = await apply_change(
        sessions,
        engine,
        edit,
        change=f"accepted suggestion {suggestion_id}",
        actor=getattr(request.state, "key_id", None),
        activate=query.activate,
        also=accept,
    )
    return change_out(result)
