"""``/v1/incidents`` (scope ``alerts``): list, one incident with its members and why each belongs, and its
case: acknowledge (= in progress), resolve, close, assign, notes, history. Every change answers the updated
incident and sends ``incident.updated`` (``incident.resolved`` for resolve) carrying the history entry as
``change``. Views own the transaction and run the DB work in the thread pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from sqlalchemy.orm import Session

from nlp_service.cases import service as cases
from nlp_service.cases.http import actor_of
from nlp_service.cases.lifecycle import CaseStatus
from nlp_service.cases.schemas import AssignRequest, CaseHistory, NoteRequest
from nlp_service.config import Settings
from nlp_service.deps import JsonBody, SessionFactoryDep, SettingsDep, in_transaction
from nlp_service.errors import ErrorResponse, OpenApiResponses
from nlp_service.incidents import service
from nlp_service.incidents.schemas import IncidentAction, IncidentOut, IncidentPage, IncidentsQuery
from nlp_service.topics.provider import TopicLabelsDep

router = APIRouter(tags=["incidents"])

IncidentId = Annotated[str, Path(min_length=1, max_length=40, description="The incident's id (inc_...)")]
NOT_FOUND: OpenApiResponses = {404: {"model": ErrorResponse, "description": "No such incident"}}
CHANGE: OpenApiResponses = {
    **NOT_FOUND,
    409: {"model": ErrorResponse, "description": "Not allowed in the incident's status"},
}
OptionalAction = Annotated[IncidentAction | None, Body()]


@router.get("/incidents", response_model=IncidentPage)
async def list_incidents(
    query: Annotated[IncidentsQuery, Query()],
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
) -> IncidentPage:
    """Incidents, newest first; filter by status (new, acknowledged, resolved, closed, open, overdue), owner,
    severity and window (``since``/``until``); paginate with ``limit``/``offset``."""
    return await in_transaction(
        sessions, lambda s: service.get_all(db_session=s, query=query, settings=settings, labels=labels)
    )


@router.get("/incidents/{incident_id}", response_model=IncidentOut, responses=NOT_FOUND)
async def get_incident(
    incident_id: IncidentId, labels: TopicLabelsDep, settings: SettingsDep, sessions: SessionFactoryDep
) -> IncidentOut:
    """One incident: headline, summary (NPS impact, key phrases of the lead alert), members by rank with the
    reason each belongs, and its case (status, owner, overdue, due_at, note)."""
    return await in_transaction(
        sessions,
        lambda s: service.get_one(db_session=s, incident_id=incident_id, settings=settings, labels=labels),
    )


async def _status(
    request: Request,
    to: CaseStatus,
    incident_id: str,
    body: IncidentAction | None,
    labels: dict[str, str],
    settings: Settings,
    sessions: SessionFactoryDep,
) -> IncidentOut:
    note = body.note if body else None
    actor = actor_of(request)

    def work(s: Session) -> IncidentOut:
        service.change_status(
            db_session=s, incident_id=incident_id, to=to, note=note, actor=actor, labels=labels
        )
        return service.get_one(db_session=s, incident_id=incident_id, settings=settings, labels=labels)

    return await in_transaction(sessions, work)


@router.post("/incidents/{incident_id}/acknowledge", response_model=IncidentOut, responses=CHANGE)
async def acknowledge_incident(
    request: Request,
    incident_id: IncidentId,
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    body: OptionalAction = None,
) -> IncidentOut:
    """``new -> acknowledged`` (in progress; 409 from any other status), with its ``new`` member alerts and
    an optional note; sends ``incident.updated`` (and ``alert.updated`` per member)."""
    return await _status(request, "acknowledged", incident_id, body, labels, settings, sessions)


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentOut, responses=CHANGE)
async def resolve_incident(
    request: Request,
    incident_id: IncidentId,
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    body: OptionalAction = None,
) -> IncidentOut:
    """``new|acknowledged -> resolved`` (409 otherwise), with its open member alerts; sends
    ``incident.resolved`` (and ``alert.resolved`` per member). A resolved incident is never reopened."""
    return await _status(request, "resolved", incident_id, body, labels, settings, sessions)


@router.post("/incidents/{incident_id}/close", response_model=IncidentOut, responses=CHANGE)
async def close_incident(
    request: Request,
    incident_id: IncidentId,
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    body: OptionalAction = None,
) -> IncidentOut:
    """``resolved -> closed`` (409 otherwise): the case is done, with its resolved member alerts; sends
    ``incident.updated`` (and ``alert.updated`` per member)."""
    return await _status(request, "closed", incident_id, body, labels, settings, sessions)


@router.post(
    "/incidents/{incident_id}/assign", response_model=IncidentOut, responses=CHANGE, dependencies=[JsonBody]
)
async def assign_incident(
    request: Request,
    incident_id: IncidentId,
    body: AssignRequest,
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
) -> IncidentOut:
    """Give the incident an owner (a name or e-mail; ``null`` unassigns), in any status but closed (409); the
    status does not change and the member alerts keep their own owners. Sends ``incident.updated``."""
    actor = actor_of(request)

    def work(s: Session) -> IncidentOut:
        cases.assign(
            db_session=s,
            target=service.case_target(labels),
            target_id=incident_id,
            owner=body.owner,
            actor=actor,
            note=body.note,
        )
        return service.get_one(db_session=s, incident_id=incident_id, settings=settings, labels=labels)

    return await in_transaction(sessions, work)


@router.post(
    "/incidents/{incident_id}/notes", response_model=IncidentOut, responses=NOT_FOUND, dependencies=[JsonBody]
)
async def add_incident_note(
    request: Request,
    incident_id: IncidentId,
    body: NoteRequest,
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
) -> IncidentOut:
    """Add a note to the incident's history (it becomes the incident's ``note``), in any status; sends
    ``incident.updated``."""
    actor = actor_of(request)

    def work(s: Session) -> IncidentOut:
        cases.add_note(
            db_session=s,
            target=service.case_target(labels),
            target_id=incident_id,
            note=body.note,
            actor=actor,
        )
        return service.get_one(db_session=s, incident_id=incident_id, settings=settings, labels=labels)

    return await in_transaction(sessions, work)


@router.get("/incidents/{incident_id}/history", response_model=CaseHistory, responses=NOT_FOUND)
async def incident_history(incident_id: IncidentId, sessions: SessionFactoryDep) -> CaseHistory:
    """Every change of the incident's case, oldest first: who (API key id, ``open`` with keys off,
    ``system``), when, what (acknowledged, resolved, closed, assigned, note), note."""

    def read(s: Session) -> CaseHistory:
        service.get(db_session=s, incident_id=incident_id)
        entries = cases.history(db_session=s, target_type="incident", target_id=incident_id)
        return CaseHistory(
            target_type="incident", target_id=incident_id, entries=[cases.entry_out(e) for e in entries]
        )

    return await in_transaction(sessions, read)
