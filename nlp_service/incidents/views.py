"""``/v1/incidents`` (scope ``alerts``): list, one incident with its members and why each belongs,
acknowledge and resolve. Views own the transaction and run the DB work in the thread pool."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query

from nlp_service.deps import SessionFactoryDep, in_transaction
from nlp_service.errors import ErrorResponse, OpenApiResponses
from nlp_service.incidents import service
from nlp_service.incidents.schemas import IncidentAction, IncidentOut, IncidentPage, IncidentsQuery
from nlp_service.topics.provider import TopicLabelsDep

router = APIRouter(tags=["incidents"])

IncidentId = Annotated[str, Path(min_length=1, max_length=40, description="The incident's id (inc_...)")]
NOT_FOUND: OpenApiResponses = {404: {"model": ErrorResponse, "description": "No such incident"}}
CONFLICT: OpenApiResponses = {409: {"model": ErrorResponse, "description": "Invalid status transition"}}


@router.get("/incidents", response_model=IncidentPage)
async def list_incidents(
    query: Annotated[IncidentsQuery, Query()], labels: TopicLabelsDep, sessions: SessionFactoryDep
) -> IncidentPage:
    """Incidents, newest first; filter by status (new, acknowledged, resolved, open) and severity;
    paginate with ``limit``/``offset``."""
    return await in_transaction(sessions, lambda s: service.get_all(db_session=s, query=query, labels=labels))


@router.get("/incidents/{incident_id}", response_model=IncidentOut, responses=NOT_FOUND)
async def get_incident(
    incident_id: IncidentId, labels: TopicLabelsDep, sessions: SessionFactoryDep
) -> IncidentOut:
    """One incident: headline, summary (NPS impact, key phrases of the lead alert), members by rank with the
    reason each belongs."""
    return await in_transaction(
        sessions, lambda s: service.get_one(db_session=s, incident_id=incident_id, labels=labels)
    )


@router.post(
    "/incidents/{incident_id}/acknowledge", response_model=IncidentOut, responses={**NOT_FOUND, **CONFLICT}
)
async def acknowledge_incident(
    incident_id: IncidentId,
    labels: TopicLabelsDep,
    sessions: SessionFactoryDep,
    body: Annotated[IncidentAction | None, Body()] = None,
) -> IncidentOut:
    """``new -> acknowledged`` (409 from any other status), with its ``new`` member alerts; sends
    ``incident.updated`` (and ``alert.updated`` per member)."""
    return await _transition(service.acknowledge, incident_id, labels, sessions, body)


@router.post(
    "/incidents/{incident_id}/resolve", response_model=IncidentOut, responses={**NOT_FOUND, **CONFLICT}
)
async def resolve_incident(
    incident_id: IncidentId,
    labels: TopicLabelsDep,
    sessions: SessionFactoryDep,
    body: Annotated[IncidentAction | None, Body()] = None,
) -> IncidentOut:
    """``new|acknowledged -> resolved`` (409 if resolved), with its open member alerts; sends
    ``incident.resolved`` (and ``alert.resolved`` per member). A resolved incident is never reopened."""
    return await _transition(service.resolve, incident_id, labels, sessions, body)


async def _transition(
    change: Any, incident_id: str, labels: dict[str, str], sessions: Any, body: IncidentAction | None
) -> IncidentOut:
    note = body.note if body else None

    def work(s: Any) -> IncidentOut:
        change(db_session=s, incident_id=incident_id, note=note, labels=labels)
        return service.get_one(db_session=s, incident_id=incident_id, labels=labels)

    return await in_transaction(sessions, work)
