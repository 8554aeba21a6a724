"""``GET /v1/insights/nps``, ``GET /v1/insights/touchpoints``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from nlp_service.deps import SessionFactoryDep, in_transaction
from nlp_service.insights import service
from nlp_service.insights.schemas import (
    InsightQuery,
    NpsQuery,
    NpsResponse,
    TouchpointsResponse,
)

router = APIRouter(tags=["insights"])


@router.get("/insights/nps", response_model=NpsResponse)
async def nps(query: Annotated[NpsQuery, Query()], sessions: SessionFactoryDep) -> NpsResponse:
    """NPS (% promoters 9-10 minus % detractors 0-6) with counts, overall and by segment, topic or time."""
    filters = query.to_filter()
    return await in_transaction(
        sessions,
        lambda s: service.nps(db_session=s, filters=filters, group_by=query.group_by, bucket=query.bucket),
    )


@router.get("/insights/touchpoints", response_model=TouchpointsResponse)
async def touchpoints(
    query: Annotated[InsightQuery, Query()], sessions: SessionFactoryDep
) -> TouchpointsResponse:
    """Touchpoint Impact Map: per touchpoint the volume, mean emotional intensity, mean valence, negative
    share, NPS and top topics in ``[start, end)``."""
    filters = query.to_filter()
    return await in_transaction(sessions, lambda s: service.touchpoint_impact(db_session=s, filters=filters))
