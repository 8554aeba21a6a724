"""``POST /v1/search`` (semantic or hybrid, with filters) and ``GET /v1/search/index`` (index status)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from nlp_service.deps import JsonBody, SearchDep, SessionFactoryDep, SettingsDep, get_batcher, in_transaction
from nlp_service.inference.limits import check_texts
from nlp_service.search import queries
from nlp_service.search.schemas import SearchRequest, SearchResponse

router = APIRouter(prefix="/search", tags=["search"])


@router.post("", response_model=SearchResponse, response_model_exclude_none=True, dependencies=[JsonBody])
async def search(
    body: SearchRequest,
    searcher: SearchDep,
    sessions: SessionFactoryDep,
    request: Request,
    settings: SettingsDep,
) -> SearchResponse:
    """The ``k`` stored comments most similar to ``query`` (or to the stored comment ``comment_id``) among
    those matching ``filters``; ``mode="hybrid"`` fuses BM25 keyword relevance by reciprocal rank."""
    if body.query is not None:
        check_texts(settings, [(("query",), body.query)])
        batcher = await get_batcher(request)  # only a text query needs the models (503 while loading)
        text = body.query
        vector = (await batcher.submit_many([text]))[0].embedding
    else:
        comment_id = body.comment_id
        assert comment_id is not None
        vector, text = await in_transaction(
            sessions,
            lambda s: queries.comment_vector(db_session=s, comment_id=comment_id, encoder=searcher.encoder),
        )
    terms = (await run_in_threadpool(searcher.keywords.terms, [text]))[0] if body.mode == "hybrid" else None
    return await in_transaction(
        sessions,
        lambda s: queries.search(
            db_session=s,
            service=searcher,
            query_vector=vector,
            k=body.k,
            filters=body.filters,
            mode=body.mode,
            query_terms=terms,
        ),
    )


@router.get("/index")
async def index_status(searcher: SearchDep) -> dict[str, object]:
    """Vector index kind (flat or hnsw), size, tombstones, and whether a background build is running."""
    return searcher.index.status()
