"""An alert's case (scope ``alerts``): acknowledge (= in progress), resolve, close, assign, notes,
history, and the feedback summary. Every change answers the updated alert and sends ``alert.updated``
(``alert.resolved`` for resolve) carrying the history entry as ``change``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from sqlalchemy.orm import Session

from nlp_service.anomaly import feedback, feedback_flow, service
from nlp_service.anomaly.schemas import AlertOut, FeedbackQuery, FeedbackSummary
from nlp_service.cases import service as cases
from nlp_service.cases.http import actor_of
from nlp_service.cases.lifecycle import CaseStatus
from nlp_service.cases.schemas import AssignRequest, CaseAction, CaseHistory, NoteRequest
from nlp_service.config import Settings
from nlp_service.deps import JsonBody, SessionFactoryDep, SettingsDep, get_loaded_engine, in_transaction
from nlp_service.errors import ErrorResponse, OpenApiResponses
from nlp_service.topics.provider import TopicLabelsDep

router = APIRouter(tags=["alerts"])

AlertId = Annotated[str, Path(min_length=1, max_length=40, description="The alert's id (alr_...)")]
NOT_FOUND: OpenApiResponses = {404: {"model": ErrorResponse, "description": "No such alert"}}
CHANGE: OpenApiResponses = {
    **NOT_FOUND,
    409: {"model": ErrorResponse, "description": "Not allowed in the alert's status"},
}
OptionalAction = Annotated[CaseAction | None, Body()]


@router.get("/alerts/feedback", response_model=FeedbackSummary)
async def alert_feedback(
    query: Annotated[FeedbackQuery, Query()], labels: TopicLabelsDep, sessions: SessionFactoryDep
) -> FeedbackSummary:
    """Feedback given on acknowledge/resolve, per topic x detector kind: useful, not useful, rated and the
    useful share (alerts created in ``[since, until)``, of ``topic``)."""
    return await in_transaction(
        sessions, lambda s: feedback.summary(db_session=s, query=query, topic_labels=labels)
    )


async def _status(
    request: Request,
    to: CaseStatus,
    alert_id: str,
    body: CaseAction | None,
    labels: dict[str, str],
    settings: Settings,
    sessions: SessionFactoryDep,
) -> AlertOut:
    action = body or CaseAction()
    actor = actor_of(request)

    def work(s: Session) -> None:
        service.change_status(
            db_session=s,
            alert_id=alert_id,
            to=to,
            note=action.note,
            feedback=action.feedback,
            actor=actor,
            topic_labels=labels,
        )

    await in_transaction(sessions, work)
    if action.feedback == "not_useful":
        await feedback_flow.tighten_after_feedback(
            sessions=sessions,
            engine=await get_loaded_engine(request),
            settings=settings,
            alert_id=alert_id,
            actor=actor,
        )
    return await in_transaction(sessions, lambda s: service.one_out(s, alert_id, settings, labels))


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut, responses=CHANGE)
async def acknowledge_alert(
    request: Request,
    alert_id: AlertId,
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    body: OptionalAction = None,
) -> AlertOut:
    """``new -> acknowledged`` (in progress; 409 from any other status), with an optional note and feedback
    (``useful`` | ``not_useful``); sends ``alert.updated``."""
    return await _status(request, "acknowledged", alert_id, body, labels, settings, sessions)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut, responses=CHANGE)
async def resolve_alert(
    request: Request,
    alert_id: AlertId,
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    body: OptionalAction = None,
) -> AlertOut:
    """``new|acknowledged -> resolved`` (409 otherwise), with an optional note and feedback; sends
    ``alert.resolved``."""
    return await _status(request, "resolved", alert_id, body, labels, settings, sessions)


@router.post("/alerts/{alert_id}/close", response_model=AlertOut, responses=CHANGE)
async def close_alert(
    request: Request,
    alert_id: AlertId,
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    body: OptionalAction = None,
) -> AlertOut:
    """``resolved -> closed`` (409 otherwise): the case is done; sends ``alert.updated``."""
    return await _status(request, "closed", alert_id, body, labels, settings, sessions)


@router.post("/alerts/{alert_id}/assign", response_model=AlertOut, responses=CHANGE, dependencies=[JsonBody])
async def assign_alert(
    request: Request,
    alert_id: AlertId,
    body: AssignRequest,
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
) -> AlertOut:
    """Give the alert an owner (a name or e-mail; ``null`` unassigns), in any status but closed (409); the
    status does not change. Sends ``alert.updated``."""
    actor = actor_of(request)

    def work(s: Session) -> AlertOut:
        cases.assign(
            db_session=s,
            target=service.case_target(labels),
            target_id=alert_id,
            owner=body.owner,
            actor=actor,
            note=body.note,
        )
        return service.one_out(s, alert_id, settings, labels)

    return await in_transaction(sessions, work)


@router.post(
    "/alerts/{alert_id}/notes", response_model=AlertOut, responses=NOT_FOUND, dependencies=[JsonBody]
)
async def add_alert_note(
    request: Request,
    alert_id: AlertId,
    body: NoteRequest,
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
) -> AlertOut:
    """Add a note to the alert's history (it becomes the alert's ``note``), in any status; sends
    ``alert.updated``."""
    actor = actor_of(request)

    def work(s: Session) -> AlertOut:
        cases.add_note(
            db_session=s, target=service.case_target(labels), target_id=alert_id, note=body.note, actor=actor
        )
        return service.one_out(s, alert_id, settings, labels)

    return await in_transaction(sessions, work)


@router.get("/alerts/{alert_id}/history", response_model=CaseHistory, responses=NOT_FOUND)
async def alert_history(alert_id: AlertId, sessions: SessionFactoryDep) -> CaseHistory:
    """Every change of the alert's case, oldest first: who (API key id, ``open`` with keys off, ``system``),
    when, what (acknowledged, resolved, closed, assigned, note, sensitivity_tightened), note, feedback."""

    def read(s: Session) -> CaseHistory:
        service.get(db_session=s, alert_id=alert_id)
        entries = cases.history(db_session=s, target_type="alert", target_id=alert_id)
        return CaseHistory(
            target_type="alert", target_id=alert_id, entries=[cases.entry_out(e) for e in entries]
        )

    return await in_transaction(sessions, read)
