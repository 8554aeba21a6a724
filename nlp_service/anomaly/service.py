"""Alert reads and lifecycle.

``new -> acknowledged -> resolved`` (``new -> resolved`` is allowed too); anything else is a 409. Overdue:
``new`` for longer than ``alert_ack_sla_s`` or ``acknowledged`` for longer than ``alert_resolve_sla_s``
after creation. Every acknowledge/resolve writes ``alert.updated`` / ``alert.resolved`` (``anomaly.events``)
in the caller's transaction; detection (``anomaly.flows``) writes ``alert.created`` / ``alert.updated``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from nlp_service.anomaly.events import emit
from nlp_service.anomaly.schemas import AlertOut, AlertPage, AlertsQuery, RepresentativeComment
from nlp_service.anomaly.tables import Alert, AlertComment, AlertStatus
from nlp_service.comments.serialize import comment_fields
from nlp_service.comments.tables import Comment
from nlp_service.config import Settings
from nlp_service.errors import Conflict, NotFound
from nlp_service.timestamps import utcnow


def get(*, db_session: Session, alert_id: str) -> Alert:
    alert = db_session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id!r} not found", detail=[{"field": "id", "message": "unknown alert"}])
    return alert


def is_overdue(alert: Alert, settings: Settings, now: datetime) -> bool:
    age = (now - alert.created_at).total_seconds()
    if alert.status == "new":
        return age > settings.alert_ack_sla_s
    return alert.status == "acknowledged" and age > settings.alert_resolve_sla_s


def _transition(
    db_session: Session,
    alert_id: str,
    *,
    allowed_from: tuple[AlertStatus, ...],
    to: AlertStatus,
    note: str | None,
) -> Alert:
    alert = db_session.scalars(
        select(Alert)
        .where(Alert.id == alert_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # the row as locked, not a copy read before
    ).first()
    if alert is None:
        raise NotFound(f"alert {alert_id!r} not found", detail=[{"field": "id", "message": "unknown alert"}])
    if alert.status not in allowed_from:
        raise Conflict(
            f"alert {alert_id!r} is {alert.status}; it cannot become {to}",
            detail=[{"field": "status", "message": f"allowed from: {', '.join(allowed_from)}"}],
        )
    now = utcnow()
    alert.status = to
    alert.updated_at = now
    alert.revision += 1
    if note is not None:
        alert.note = note
    if to == "acknowledged":
        alert.acknowledged_at = now
    else:
        alert.resolved_at = now
    db_session.flush()
    return alert


def acknowledge(
    *, db_session: Session, alert_id: str, note: str | None = None, topic_label: str | None = None
) -> Alert:
    """``new -> acknowledged`` (409 otherwise); writes ``alert.updated``."""
    alert = _transition(db_session, alert_id, allowed_from=("new",), to="acknowledged", note=note)
    emit(db_session, "alert.updated", alert, topic_label)
    return alert


def resolve(
    *, db_session: Session, alert_id: str, note: str | None = None, topic_label: str | None = None
) -> Alert:
    """``new|acknowledged -> resolved`` (409 if already resolved); writes ``alert.resolved``."""
    alert = _transition(db_session, alert_id, allowed_from=("new", "acknowledged"), to="resolved", note=note)
    emit(db_session, "alert.resolved", alert, topic_label)
    return alert


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


def to_out(
    alert: Alert,
    settings: Settings,
    *,
    now: datetime,
    reps: list[RepresentativeComment] | None = None,
    topic_label: str | None = None,
) -> AlertOut:
    return AlertOut(
        id=alert.id,
        topic_id=alert.topic_id,
        topic_label=topic_label,
        segment=alert.segment,
        segment_value=alert.segment_value,
        kind=alert.kind,
        direction=alert.direction,
        status=alert.status,
        overdue=is_overdue(alert, settings, now),
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
        note=alert.note,
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
                options.append(Alert.status.in_(("new", "acknowledged")))
            elif s == "overdue":
                ack_due = now - timedelta(seconds=settings.alert_ack_sla_s)
                res_due = now - timedelta(seconds=settings.alert_resolve_sla_s)
                options.append(
                    or_(
                        and_(Alert.status == "new", Alert.created_at < ack_due),
                        and_(Alert.status == "acknowledged", Alert.created_at < res_due),
                    )
                )
            else:
                options.append(Alert.status == s)
        cond.append(or_(*options))
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
    reps = representatives_of(db_session=db_session, alert_ids=[a.id for a in alerts])
    labels = topic_labels or {}
    return AlertPage(
        alerts=[
            to_out(a, settings, now=now, reps=reps.get(a.id), topic_label=labels.get(a.topic_id))
            for a in alerts
        ],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )
