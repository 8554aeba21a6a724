"""``/v1/comments``: ingest (analyse + store, idempotent), get, list with filters, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from nlp_service.comments import queries, service
from nlp_service.comments.import_views import router as import_router
from nlp_service.comments.schemas import (
    CommentOut,
    CommentPage,
    IngestItem,
    IngestRequest,
    IngestResponse,
    ListQuery,
)
from nlp_service.deps import (
    JsonBody,
    SearchDep,
    SessionFactoryDep,
    SettingsDep,
    get_batcher,
    in_transaction,
)
from nlp_service.errors import InvalidInput
from nlp_service.hardening.clients import ClientId
from nlp_service.inference.limits import check_texts

router = APIRouter(prefix="/comments", tags=["comments"])
router.include_router(import_router)  # POST /comments/import (before the /{comment_id:path} routes)

CommentIdPath = Annotated[str, Path(min_length=1, max_length=200, description="the client's comment id")]


def _check_unique_ids(body: IngestRequest) -> None:
    first: dict[str, int] = {}
    detail: list[dict[str, Any]] = []
    for i, comment in enumerate(body.comments):
        if comment.id in first:
            detail.append(
                {
                    "index": i,
                    "field": f"comments[{i}].id",
                    "message": f"duplicate id {comment.id!r} (also comments[{first[comment.id]}])",
                    "type": "duplicate_id",
                }
            )
        else:
            first[comment.id] = i
    if detail:
        fields = ", ".join(d["field"] for d in detail)
        raise InvalidInput(f"duplicate comment ids in one request: {fields}", detail=detail)


@router.post(
    "",
    response_model=IngestResponse,
    status_code=201,
    dependencies=[JsonBody],
    responses={
        200: {"description": "Every comment was already stored with the same payload"},
        409: {"description": "A known id was sent with a different payload (nothing stored)"},
    },
)
async def ingest(
    body: IngestRequest,
    search: SearchDep,
    sessions: SessionFactoryDep,
    request: Request,
    response: Response,
    client: ClientId,
    settings: SettingsDep,
) -> IngestResponse:
    """Analyse and store 1-1,000 comments in one transaction; idempotent on ``id``.

    201 if at least one comment was created, 200 if all were already stored with the same payload; each
    result says ``created`` or ``existing``. A known id with a different payload: 409, nothing stored.
    """
    check_texts(settings, ((("comments", i, "text"), c.text) for i, c in enumerate(body.comments)))
    _check_unique_ids(body)
    comments = body.comments
    hashes = [service.payload_hash(c) for c in comments]
    known = await in_transaction(
        sessions, lambda s: service.find_known(db_session=s, comments=comments, hashes=hashes)
    )
    new = [i for i in range(len(comments)) if i not in known]
    existing = set(known)
    if new:
        batcher = await get_batcher(request)  # only new comments need the models (503 while loading)
        texts = [comments[i].text for i in new]
        # Before the write transaction (no locks held meanwhile); keyword terms alongside the inference.
        analyses, terms = await asyncio.gather(
            batcher.submit_many(texts, client=client), run_in_threadpool(search.keywords.terms, texts)
        )
        created = await in_transaction(
            sessions,
            lambda s: service.create_many(
                db_session=s,
                comments=[comments[i] for i in new],
                hashes=[hashes[i] for i in new],
                analyses=analyses,
                terms=terms,
            ),
        )
        existing.update(new[j] for j in created.existing)
        await run_in_threadpool(search.on_created, created)
    results = [
        IngestItem(index=i, id=c.id, status="existing" if i in existing else "created")
        for i, c in enumerate(comments)
    ]
    n_created = len(comments) - len(existing)
    response.status_code = 201 if n_created else 200
    return IngestResponse(created=n_created, existing=len(existing), results=results)


@router.get("", response_model=CommentPage)
async def list_comments(query: Annotated[ListQuery, Query()], sessions: SessionFactoryDep) -> CommentPage:
    """Stored comments matching the filters, newest first; follow ``next_cursor`` for the next page."""
    filters = query.to_filter()
    return await in_transaction(
        sessions,
        lambda s: queries.get_all(db_session=s, filters=filters, limit=query.limit, cursor=query.cursor),
    )


@router.get("/{comment_id:path}", response_model=CommentOut)
async def get_comment(comment_id: CommentIdPath, sessions: SessionFactoryDep) -> CommentOut:
    """One stored comment with its analysis (sentiment, emotions, topics, model versions)."""
    return await in_transaction(sessions, lambda s: queries.get(db_session=s, comment_id=comment_id))


@router.delete("/{comment_id:path}", status_code=204, response_class=Response)
async def delete_comment(
    comment_id: CommentIdPath, search: SearchDep, sessions: SessionFactoryDep
) -> Response:
    """Delete a comment: its predictions, its topic counts (decremented) and its search index entry."""
    row_id = await in_transaction(sessions, lambda s: service.delete(db_session=s, comment_id=comment_id))
    await run_in_threadpool(search.on_deleted, row_id)
    return Response(status_code=204)
