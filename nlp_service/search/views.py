"""``POST /v1/search`` (semantic or hybrid, with filters) and ``GET /v1/search/index`` (index status)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from nlp_service.deps import DbDep, JsonBody, StateDep, in_transaction
from nlp_service.search import service
from nlp_service.search.schemas import SearchRequest, SearchResponse

router = APIRouter(prefix="/search", tags=["search"])


@router.post("", response_model=SearchResponse, response_model_exclude_none=True, dependencies=[JsonBody])
async def search(body: SearchRequest, state: StateDep, db: DbDep) -> SearchResponse:
    """The ``k`` stored comments most similar to ``query`` (or to the stored comment ``comment_id``) among
    those matching ``filters``; ``mode="hybrid"`` fuses BM25 keyword relevance by reciprocal rank."""
    searcher = state.require_search()
    if body.query is not None:
        _, batcher = state.require_engine()
        text = body.query
        vector = (await batcher.submit_many([text]))[0].embedding
    else:
        comment_id = body.comment_id
        assert comment_id is not None
        vector, text = await in_transaction(
            db, lambda s: service.comment_vector(db_session=s, comment_id=comment_id)
        )
    terms = (await run_in_threadpool(searcher.keywords.terms, [text]))[0] if body.mode == "hybrid" else None
    return await in_transaction(
        db,
        lambda s: service.search(
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
async def index_status(state: StateDep) -> dict[str, object]:
    """Vector index kind (flat or hnsw), size, tombstones, and whether a background build is running."""
    return state.require_search().index.status()
