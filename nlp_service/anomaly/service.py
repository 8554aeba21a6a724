"""Alert reads and their cases.

An alert's case follows the one lifecycle of ``nlp_service.cases.lifecycle``: ``new -> acknowledged (in
progress) -> resolved -> closed`` (``new -> resolved`` too); anything else is a 409. Every change
(acknowledge, resolve, close, assign, note) is kept in the case history and writes ``alert.updated``
(``alert.resolved`` for resolve) with the change (``anomaly.events``) in the caller's transaction;
detection (``anomaly.flows``) writes ``alert.created`` / ``alert.updated``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from nlp_service.anomaly.events import emit
from nlp_service.anomaly.schemas import AlertOut, AlertPage, AlertsQuery, RepresentativeComment
from nlp_service.anomaly.tables import Alert, AlertComment
from nlp_service.cases import service as cases
from nlp_service.cases.lifecycle import OPEN_STATUSES, CaseStatus, Feedback, Slas, due_at
from nlp_service.cases.lifecycle import is_overdue as step_overdue
from nlp_service.cases.tables import CaseEntry
from nlp_service.comments.serialize import comment_fields
from nlp_service.comments.tables import Comment
from nlp_service.config import Settings
from nlp_service.errors import NotFound
from nlp_service.incidents.tables import IncidentMember
from nlp_service.timestamps import utcnow

SYSTEM = "system"  # the actor of changes made by the service itself


def get(*, db_session: Session, alert_id: str) -> Alert:
    alert = db_session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id!r} not found", detail=[{"field": "id", "message": "unknown alert"}])
    return alert


def is_overdue(alert: Alert, settings: Settings, now: datetime) -> bool:
    return step_overdue(alert.status, alert.created_at, Slas.from_settings(settings), now)


def _lock(db_session: Session, alert_id: str) -> Alert | None:
    return db_session.scalars(
        select(Alert)
        .where(Alert.id == alert_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # the row as locked, not a copy read before
    ).first()


def case_target(topic_labels: Mapping[str, str] | None = None) -> cases.CaseTarget[Alert]:
    """Alerts as case targets: each change sends ``alert.updated`` (``alert.resolved`` when resolved)."""
    labels = topic_labels or {}

    def notify(db_session: Session, alert: Alert, entry: CaseEntry) -> None:
        event = "alert.resolved" if entry.action == "resolved" else "alert.updated"
        emit(db_session, event, alert, labels.get(alert.topic_id), cases.entry_payload(entry))

    return cases.CaseTarget(type="alert", lock=_lock, notify=notify)


def _labels(alert_id: str, topic_label: str | None, db_session: Session) -> dict[str, str]:
    if topic_label is None:
        return {}
    alert = db_session.get(Alert, alert_id)
    return {} if alert is None else {alert.topic_id: topic_label}


def change_status(
    *,
    db_session: Session,
    alert_id: str,
    to: CaseStatus,
    note: str | None = None,
    feedback: str | None = None,
    actor: str = SYSTEM,
    topic_labels: Mapping[str, str] | None = None,
) -> Alert:
    """Move the alert's case to ``to`` (see ``cases.lifecycle.ALLOWED_FROM``; 404, 409)."""
    alert, _ = cases.transition(
        db_session=db_session,
        target=case_target(topic_labels),
        target_id=alert_id,
        to=to,
        actor=actor,
        note=note,
        feedback=feedback,
    )
    return alert


def acknowledge(
    *, db_session: Session, alert_id: str, note: str | None = None, topic_label: str | None = None
) -> Alert:
    """``new -> acknowledged`` (409 otherwise); writes ``alert.updated``."""
    labels = _labels(alert_id, topic_label, db_session)
    return change_status(
        db_session=db_session, alert_id=alert_id, to="acknowledged", note=note, topic_labels=labels
    )


def resolve(
    *, db_session: Session, alert_id: str, note: str | None = None, topic_label: str | None = None
) -> Alert:
    """``new|acknowledged -> resolved`` (409 if already resolved); writes ``alert.resolved``."""
    labels = _labels(alert_id, topic_label, db_session)
    return change_status(
        db_session=db_session, alert_id=alert_id, to="resolved", note=note, topic_labels=labels
    )


def representatives_of(
    *, db_session: Session, alert_ids: Sequence[str]
) -> dict[str, list[RepresentativeComment]]:
    out: dict[str, list[RepresentativeComment]] = defaultdict(list)
    if not alert_ids:
        return out
    rows = db_session.execute(
        select(AlertComment, Comment)
        .join(Comment, Comment.row_id == AlertComment.row_id)
        .where(AlertComment.alert_id.in_(list(alert_ids)))
        .order_by(AlertComment.alert_id, AlertComment.rank)
    )
    for link, c in rows:
        out[link.alert_id].append(RepresentativeComment(**comment_fields(c), similarity=link.similarity))
    return out


def incidents_of(*, db_session: Session, alert_ids: Sequence[str]) -> dict[str, str]:
    """The incident each of these alerts belongs to (alerts in none are absent)."""
    if not alert_ids:
        return {}
    rows = db_session.execute(
        select(IncidentMember.alert_id, IncidentMember.incident_id).where(
            IncidentMember.alert_id.in_(list(alert_ids))
        )
    )
    return {alert_id: incident_id for alert_id, incident_id in rows}


def to_out(
    alert: Alert,
    settings: Settings,
    *,
    now: datetime,
    reps: list[RepresentativeComment] | None = None,
    topic_label: str | None = None,
    incident_id: str | None = None,
) -> AlertOut:
    return AlertOut(
        id=alert.id,
        incident_id=incident_id,
        topic_id=alert.topic_id,
        topic_label=topic_label,
        segment=alert.segment,
        segment_value=alert.segment_value,
        kind=alert.kind,
        direction=alert.direction,
        status=alert.status,
        overdue=is_overdue(alert, settings, now),
        due_at=due_at(alert.status, alert.created_at, Slas.from_settings(settings)),
        owner=alert.owner,
        feedback=cast(Feedback | None, alert.feedback),
        severity=alert.severity,
        bucket=alert.bucket,
        window_start=alert.window_start,
        window_end=alert.window_end,
        peak_at=alert.peak_at,
        baseline=alert.baseline,
        observed=alert.observed,
        score=alert.score,
        p_value=alert.p_value,
        buckets_fired=alert.buckets_fired,
        revision=alert.revision,
        explanation=alert.explanation or {},
        representative_comments=reps or [],
        created_at=alert.created_at,
        updated_at=alert.updated_at,
        acknowledged_at=alert.acknowledged_at,
        resolved_at=alert.resolved_at,
        closed_at=alert.closed_at,
        note=alert.note,
    )


def one_out(db_session: Session, alert_id: str, settings: Settings, labels: Mapping[str, str]) -> AlertOut:
    """One alert as answered by the API (404 if unknown)."""
    alert = get(db_session=db_session, alert_id=alert_id)
    reps = representatives_of(db_session=db_session, alert_ids=[alert.id]).get(alert.id)
    incident_id = incidents_of(db_session=db_session, alert_ids=[alert.id]).get(alert.id)
    return to_out(
        alert,
        settings,
        now=utcnow(),
        reps=reps,
        topic_label=labels.get(alert.topic_id),
        incident_id=incident_id,
    )


def get_all(
    *,
    db_session: Session,
    settings: Settings,
    query: AlertsQuery,
    topic_labels: Mapping[str, str] | None = None,
) -> AlertPage:
    """Alerts matching the filters, newest first, paginated by ``limit``/``offset``."""
    now = utcnow()
    cond: list[ColumnElement[bool]] = []
    if query.status:
        options: list[ColumnElement[bool]] = []
        for s in query.status:
            if s == "open":
                options.append(Alert.status.in_(OPEN_STATUSES))
            elif s == "overdue":
                slas = Slas.from_settings(settings)
                options.append(
                    or_(
                        *(
                            and_(Alert.status == step, Alert.created_at < now - timedelta(seconds=sla))
                            for step in ("new", "acknowledged", "resolved")
                            if (sla := slas.of(step)) is not None
                        )
                    )
                )
            else:
                options.append(Alert.status == s)
        cond.append(or_(*options))
    if query.owner:
        cond.append(Alert.owner.in_(query.owner))
    if query.topic:
        cond.append(Alert.topic_id.in_(query.topic))
    if query.kind:
        cond.append(Alert.kind.in_(query.kind))
    if query.severity:
        cond.append(Alert.severity.in_(query.severity))
    if query.since:
        cond.append(Alert.window_end > query.since)
    if query.until:
        cond.append(Alert.window_start < query.until)
    total = int(db_session.scalar(select(func.count()).select_from(Alert).where(*cond)) or 0)
    alerts = list(
        db_session.scalars(
            select(Alert)
            .where(*cond)
            .order_by(Alert.created_at.desc(), Alert.id)
            .limit(query.limit)
            .offset(query.offset)
        )
    )
    ids = [a.id for a in alerts]
    reps = representatives_of(db_session=db_session, alert_ids=ids)
    incidents = incidents_of(db_session=db_session, alert_ids=ids)
    labels = topic_labels or {}
    return AlertPage(
        alerts=[
            to_out(
                a,
                settings,
                now=now,
                reps=reps.get(a.id),
                topic_label=labels.get(a.topic_id),
                incident_id=incidents.get(a.id),
            )
            for a in alerts
        ],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )
