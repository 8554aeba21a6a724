"""``GET /v1/topics`` (scope ``search``) and ``GET /v1/topics/{id}/series`` (scope ``alerts``).

Views own the transaction (``in_transaction``: one session, committed before the response).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from nlp_service.anomaly.chart import topic_series_chart
from nlp_service.deps import SessionFactoryDep, SettingsDep, in_transaction
from nlp_service.errors import ErrorResponse, OpenApiResponses
from nlp_service.topics import service
from nlp_service.topics.provider import TaxonomyDep, TopicLabelsDep
from nlp_service.topics.schemas import SeriesQuery, TopicSeriesResponse, TopicsQuery, TopicsResponse

router = APIRouter()

TopicId = Annotated[str, Path(min_length=1, max_length=100, description="A taxonomy topic id")]
NOT_FOUND: OpenApiResponses = {404: {"model": ErrorResponse, "description": "No such topic"}}


@router.get("/topics", response_model=TopicsResponse, tags=["insights"])
async def topics(
    query: Annotated[TopicsQuery, Query()], taxonomy: TaxonomyDep, sessions: SessionFactoryDep
) -> TopicsResponse:
    """The topic taxonomy with comment counts in ``[start, end)`` (whole hours), most frequent first."""
    return await in_transaction(
        sessions,
        lambda s: service.topic_volumes(db_session=s, taxonomy=taxonomy, start=query.start, end=query.end),
    )


@router.get(
    "/topics/{topic_id}/series", response_model=TopicSeriesResponse, responses=NOT_FOUND, tags=["alerts"]
)
async def topic_series(
    topic_id: TopicId,
    query: Annotated[SeriesQuery, Query()],
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
) -> TopicSeriesResponse:
    """A topic's counts per bucket (optionally one segment value), share of all comments, the detector's
    baseline, change points, spikes and the alerts overlapping the range: everything a chart needs."""
    known = list(labels)
    return await in_transaction(
        sessions,
        lambda s: topic_series_chart(
            db_session=s, settings=settings, topic_id=topic_id, query=query, known_topics=known
        ),
    )
