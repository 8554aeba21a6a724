"""Incident reads and lifecycle.

``new -> acknowledged -> resolved`` (``new -> resolved`` too); anything else is a 409, and a resolved
incident is never reopened. Acknowledging an incident acknowledges its ``new`` member alerts; resolving it
resolves its open members (a person acted on the whole incident; each alert's own event is written too).
Every transition writes ``incident.updated`` / ``incident.resolved`` in the caller's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from nlp_service.anomaly import service as alerts
from nlp_service.anomaly.cursor import lock as lock_detector
from nlp_service.anomaly.tables import Alert, AlertStatus
from nlp_service.errors import Conflict, NotFound
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


def to_out(incident: Incident, members: Members, labels: Mapping[str, str] | None = None) -> IncidentOut:
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
    )


def get_one(*, db_session: Session, incident_id: str, labels: Mapping[str, str] | None = None) -> IncidentOut:
    incident = get(db_session=db_session, incident_id=incident_id)
    members = members_of(db_session=db_session, incident_ids=[incident.id]).get(incident.id, [])
    return to_out(incident, members, labels)


def get_all(
    *, db_session: Session, query: IncidentsQuery, labels: Mapping[str, str] | None = None
) -> IncidentPage:
    """Incidents matching the filters, newest first, paginated by ``limit``/``offset``."""
    cond: list[ColumnElement[bool]] = []
    if query.status:
        statuses = {s for q in query.status for s in (("new", "acknowledged") if q == "open" else (q,))}
        cond.append(Incident.status.in_(sorted(statuses)))
    if query.severity:
        cond.append(Incident.severity.in_(query.severity))
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
        incidents=[to_out(i, members.get(i.id, []), labels) for i in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


def _transition(
    db_session: Session,
    incident_id: str,
    *,
    allowed_from: tuple[AlertStatus, ...],
    to: AlertStatus,
    note: str | None,
) -> Incident:
    """Lock and change one incident. The detector's lock is taken first, as a detection run does, so a
    run's write phase and a transition (both lock the incident and its alerts) never deadlock."""
    now = utcnow()
    lock_detector(db_session, now)
    incident = db_session.scalars(
        select(Incident)
        .where(Incident.id == incident_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if incident is None:
        raise _not_found(incident_id)
    if incident.status not in allowed_from:
        raise Conflict(
            f"incident {incident_id!r} is {incident.status}; it cannot become {to}",
            detail=[{"field": "status", "message": f"allowed from: {', '.join(allowed_from)}"}],
        )
    incident.status = to
    incident.updated_at = now
    incident.revision += 1
    if note is not None:
        incident.note = note
    if to == "acknowledged":
        incident.acknowledged_at = now
    else:
        incident.resolved_at, incident.resolved_reason = now, "manual"
    db_session.flush()
    return incident


def acknowledge(
    *, db_session: Session, incident_id: str, note: str | None = None, labels: Mapping[str, str] | None = None
) -> Incident:
    """``new -> acknowledged`` (409 otherwise), with its ``new`` members; writes ``incident.updated``."""
    incident = _transition(db_session, incident_id, allowed_from=("new",), to="acknowledged", note=note)
    return _cascade(db_session, incident, "new", alerts.acknowledge, "incident.updated", labels)


def resolve(
    *, db_session: Session, incident_id: str, note: str | None = None, labels: Mapping[str, str] | None = None
) -> Incident:
    """``new|acknowledged -> resolved`` (409 if resolved), with its open members; writes
    ``incident.resolved``."""
    incident = _transition(
        db_session, incident_id, allowed_from=("new", "acknowledged"), to="resolved", note=note
    )
    return _cascade(db_session, incident, "open", alerts.resolve, "incident.resolved", labels)


def _cascade(
    db_session: Session,
    incident: Incident,
    which: str,
    change: Callable[..., Alert],
    event_type: str,
    labels: Mapping[str, str] | None,
) -> Incident:
    """Apply ``change`` to the member alerts in ``which`` state (``new`` or ``open``), then write the
    incident's event."""
    labels = labels or {}
    members = members_of(db_session=db_session, incident_ids=[incident.id]).get(incident.id, [])
    wanted = ("new",) if which == "new" else ("new", "acknowledged")
    for _, alert in sorted(members, key=lambda m: m[1].id):  # alerts locked in one order
        if alert.status in wanted:
            change(db_session=db_session, alert_id=alert.id, topic_label=labels.get(alert.topic_id))
    emit(db_session, event_type, incident, members)
    return incident
