"""Incident reads and their cases.

An incident is a case like an alert (``nlp_service.cases``): ``new -> acknowledged (in progress) -> resolved
-> closed`` (``new -> resolved`` too; anything else is a 409; never reopened), an owner, notes, the SLA of
each step and a history entry per change. Acknowledging an incident acknowledges its ``new`` member alerts,
resolving it resolves its open members, closing it closes its resolved members (a person acted on the whole
incident; each alert's own case entry and event are written too, by the same actor). Every change writes
``incident.updated`` (``incident.resolved`` for resolve) with the history entry as ``change``, in the caller's
transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from nlp_service.anomaly import service as alerts
from nlp_service.anomaly.cursor import lock as lock_detector
from nlp_service.anomaly.tables import Alert
from nlp_service.cases import service as cases
from nlp_service.cases.lifecycle import OPEN_STATUSES, CaseStatus, Slas, due_at, is_overdue
from nlp_service.cases.tables import CaseEntry
from nlp_service.config import Settings
from nlp_service.errors import NotFound
from nlp_service.incidents.events import emit
from nlp_service.incidents.schemas import IncidentMemberOut, IncidentOut, IncidentPage, IncidentsQuery
from nlp_service.incidents.tables import Incident, IncidentMember
from nlp_service.timestamps import utcnow

Members = list[tuple[IncidentMember, Alert]]


def _not_found(incident_id: str) -> NotFound:
    return NotFound(
        f"incident {incident_id!r} not found", detail=[{"field": "id", "message": "unknown incident"}]
    )


def get(*, db_session: Session, incident_id: str) -> Incident:
    incident = db_session.get(Incident, incident_id)
    if incident is None:
        raise _not_found(incident_id)
    return incident


def members_of(*, db_session: Session, incident_ids: Sequence[str]) -> dict[str, Members]:
    """Each incident's (member link, alert) pairs, by rank."""
    out: dict[str, Members] = defaultdict(list)
    if not incident_ids:
        return out
    rows = db_session.execute(
        select(IncidentMember, Alert)
        .join(Alert, Alert.id == IncidentMember.alert_id)
        .where(IncidentMember.incident_id.in_(list(incident_ids)))
        .order_by(IncidentMember.incident_id, IncidentMember.rank, IncidentMember.alert_id)
    )
    for link, alert in rows.tuples():
        out[link.incident_id].append((link, alert))
    return out


def to_out(
    incident: Incident,
    members: Members,
    labels: Mapping[str, str] | None = None,
    *,
    slas: Slas,
    now: datetime,
) -> IncidentOut:
    labels = labels or {}
    return IncidentOut(
        id=incident.id,
        headline=incident.headline,
        status=incident.status,
        severity=incident.severity,
        segment=incident.segment,
        segment_value=incident.segment_value,
        topics=list(incident.topics),
        window_start=incident.window_start,
        window_end=incident.window_end,
        summary=incident.summary or {},
        members=[
            IncidentMemberOut(
                alert_id=a.id,
                rank=link.rank,
                topic_id=a.topic_id,
                topic_label=labels.get(a.topic_id),
                kind=a.kind,
                direction=a.direction,
                severity=a.severity,
                status=a.status,
                segment=a.segment,
                segment_value=a.segment_value,
                window_start=a.window_start,
                window_end=a.window_end,
                observed=a.observed,
                baseline=a.baseline,
                score=a.score,
                reason_code=link.reason_code,
                reason=link.reason,
                related_alert_id=link.related_alert_id,
                summary=(a.explanation or {}).get("summary"),
            )
            for link, a in members
        ],
        revision=incident.revision,
        created_at=incident.created_at,
        updated_at=incident.updated_at,
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
        resolved_reason=incident.resolved_reason,
        note=incident.note,
        owner=incident.owner,
        overdue=is_overdue(incident.status, incident.created_at, slas, now),
        due_at=due_at(incident.status, incident.created_at, slas),
        closed_at=incident.closed_at,
    )


def get_one(
    *,
    db_session: Session,
    incident_id: str,
    settings: Settings,
    labels: Mapping[str, str] | None = None,
) -> IncidentOut:
    incident = get(db_session=db_session, incident_id=incident_id)
    members = members_of(db_session=db_session, incident_ids=[incident.id]).get(incident.id, [])
    return to_out(incident, members, labels, slas=Slas.from_settings(settings), now=utcnow())


def _status_filter(statuses: Sequence[str], slas: Slas, now: datetime) -> ColumnElement[bool]:
    """``open`` = new or acknowledged; ``overdue`` = past the SLA of its step; else the status itself."""
    options: list[ColumnElement[bool]] = []
    for s in statuses:
        if s == "open":
            options.append(Incident.status.in_(OPEN_STATUSES))
        elif s == "overdue":
            for step in ("new", "acknowledged", "resolved"):
                sla = slas.of(step)
                if sla is not None:
                    options.append(
                        and_(Incident.status == step, Incident.created_at < now - timedelta(seconds=sla))
                    )
        else:
            options.append(Incident.status == s)
    return or_(*options)


def get_all(
    *,
    db_session: Session,
    query: IncidentsQuery,
    settings: Settings,
    labels: Mapping[str, str] | None = None,
) -> IncidentPage:
    """Incidents matching the filters, newest first, paginated by ``limit``/``offset``."""
    now, slas = utcnow(), Slas.from_settings(settings)
    cond: list[ColumnElement[bool]] = []
    if query.status:
        cond.append(_status_filter(query.status, slas, now))
    if query.owner:
        cond.append(Incident.owner.in_(query.owner))
    if query.severity:
        cond.append(Incident.severity.in_(query.severity))
    if query.since:
        cond.append(Incident.window_end > query.since)
    if query.until:
        cond.append(Incident.window_start < query.until)
    total = int(db_session.scalar(select(func.count()).select_from(Incident).where(*cond)) or 0)
    rows = list(
        db_session.scalars(
            select(Incident)
            .where(*cond)
            .order_by(Incident.created_at.desc(), Incident.id)
            .limit(query.limit)
            .offset(query.offset)
        )
    )
    members = members_of(db_session=db_session, incident_ids=[i.id for i in rows])
    return IncidentPage(
        incidents=[to_out(i, members.get(i.id, []), labels, slas=slas, now=now) for i in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


def _lock(db_session: Session, incident_id: str) -> Incident | None:
    """The incident locked and re-read. The detector's lock is taken first, as a detection run does, so a
    run's write phase and a case change (both lock the incident and its alerts) never deadlock."""
    lock_detector(db_session, utcnow())
    return db_session.scalars(
        select(Incident)
        .where(Incident.id == incident_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


CASCADE: dict[str, tuple[CaseStatus, ...]] = {
    "acknowledged": ("new",),
    "resolved": OPEN_STATUSES,
    "closed": ("resolved",),
}
"""An incident's transition -> the statuses of the member alerts that follow it."""


def case_target(topic_labels: Mapping[str, str] | None = None) -> cases.CaseTarget[Incident]:
    """Incidents as case targets. A transition cascades to the member alerts (``CASCADE``) by the same actor
    with the same note; a manual resolve sets ``resolved_reason`` ``manual``. Each change then sends
    ``incident.updated`` (``incident.resolved`` when resolved) carrying its history entry."""
    labels = topic_labels or {}

    def notify(db_session: Session, incident: Incident, entry: CaseEntry) -> None:
        members = members_of(db_session=db_session, incident_ids=[incident.id]).get(incident.id, [])
        wanted = CASCADE.get(entry.action, ())
        for _, alert in sorted(members, key=lambda m: m[1].id):  # alerts locked in one order
            if alert.status in wanted:
                alerts.change_status(
                    db_session=db_session,
                    alert_id=alert.id,
                    to=entry.action,  # type: ignore[arg-type]  # a CASCADE key: a case status
                    note=entry.note,
                    actor=entry.actor,
                    topic_labels=labels,
                )
        if entry.action == "resolved":
            incident.resolved_reason = "manual"
        event = "incident.resolved" if entry.action == "resolved" else "incident.updated"
        emit(db_session, event, incident, members, cases.entry_payload(entry))

    return cases.CaseTarget(type="incident", lock=_lock, notify=notify)


def change_status(
    *,
    db_session: Session,
    incident_id: str,
    to: CaseStatus,
    note: str | None = None,
    actor: str = alerts.SYSTEM,
    labels: Mapping[str, str] | None = None,
) -> Incident:
    """Move the incident's case to ``to`` (see ``cases.lifecycle.ALLOWED_FROM``; 404, 409), with its
    members (``CASCADE``)."""
    incident, _ = cases.transition(
        db_session=db_session,
        target=case_target(labels),
        target_id=incident_id,
        to=to,
        actor=actor,
        note=note,
    )
    return incident


def acknowledge(
    *,
    db_session: Session,
    incident_id: str,
    note: str | None = None,
    labels: Mapping[str, str] | None = None,
    actor: str = alerts.SYSTEM,
) -> Incident:
    """``new -> acknowledged`` (409 otherwise), with its ``new`` members; writes ``incident.updated``."""
    return change_status(
        db_session=db_session,
        incident_id=incident_id,
        to="acknowledged",
        note=note,
        actor=actor,
        labels=labels,
    )


def resolve(
    *,
    db_session: Session,
    incident_id: str,
    note: str | None = None,
    labels: Mapping[str, str] | None = None,
    actor: str = alerts.SYSTEM,
) -> Incident:
    """``new|acknowledged -> resolved`` (409 otherwise), with its open members; writes
    ``incident.resolved``."""
    return change_status(
        db_session=db_session, incident_id=incident_id, to="resolved", note=note, actor=actor, labels=labels
    )
