"""``GET /v1/topics``, ``GET /v1/insights/nps``, ``GET /v1/insights/touchpoints``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from nlp_service.deps import DbDep, StateDep, in_transaction
from nlp_service.insights import service
from nlp_service.insights.schemas import (
    InsightQuery,
    NpsQuery,
    NpsResponse,
    TopicsQuery,
    TopicsResponse,
    TouchpointsResponse,
)
from nlp_service.state import AppState

router = APIRouter(tags=["insights"])


def taxonomy_of(state: AppState) -> Any:
    """The taxonomy the loaded topic scorer uses, else the configured taxonomy file."""
    scorer = getattr(getattr(state.engine, "models", None), "topics", None)
    taxonomy = getattr(scorer, "taxonomy", None)
    if taxonomy is not None:
        return taxonomy
    from nlp_service.topics.taxonomy import load_taxonomy

    return load_taxonomy(state.settings.resolved_taxonomy_path())


@router.get("/topics", response_model=TopicsResponse)
async def topics(query: Annotated[TopicsQuery, Query()], state: StateDep, db: DbDep) -> TopicsResponse:
    """The topic taxonomy with comment counts in ``[start, end)`` (whole hours), most frequent first."""
    taxonomy = taxonomy_of(state)
    return await in_transaction(
        db, lambda s: service.topic_volumes(db_session=s, taxonomy=taxonomy, start=query.start, end=query.end)
    )


@router.get("/insights/nps", response_model=NpsResponse)
async def nps(query: Annotated[NpsQuery, Query()], db: DbDep) -> NpsResponse:
    """NPS (% promoters 9-10 minus % detractors 0-6) with counts, overall and by segment, topic or time."""
    filters = query.to_filter()
    return await in_transaction(
        db, lambda s: service.nps(db_session=s, filters=filters, group_by=query.group_by, bucket=query.bucket)
    )


@router.get("/insights/touchpoints", response_model=TouchpointsResponse)
async def touchpoints(query: Annotated[InsightQuery, Query()], db: DbDep) -> TouchpointsResponse:
    """Touchpoint Impact Map: per touchpoint the volume, mean emotional intensity, mean valence, negative
    share, NPS and top topics in ``[start, end)``."""
    filters = query.to_filter()
    return await in_transaction(db, lambda s: service.touchpoint_impact(db_session=s, filters=filters))
