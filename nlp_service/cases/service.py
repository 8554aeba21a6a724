"""Case changes for any target (an alert, an incident): lifecycle transitions, assignment, notes, feedback.

Each change locks the target's row, applies the change, bumps its ``revision``, keeps a history entry
(``case_entries``) and lets the target's domain write its webhook event, all in the caller's transaction
(services flush, never commit). A target domain describes itself once with a :class:`CaseTarget`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.cases.lifecycle import ALLOWED_FROM, CaseStatus, TargetType
from nlp_service.cases.schemas import CaseEntryOut
from nlp_service.cases.tables import CaseEntry
from nlp_service.errors import Conflict, NotFound
from nlp_service.timestamps import utcnow


class CaseRow(Protocol):
    """What a target's table holds for its case (``alerts`` has these columns; ``incidents`` should too)."""

    id: Any
    status: Any
    owner: Any
    note: Any
    feedback: Any
    feedback_at: Any
    created_at: Any
    updated_at: Any
    revision: Any
    acknowledged_at: Any
    resolved_at: Any
    closed_at: Any


R = TypeVar("R", bound=CaseRow)


@dataclass(frozen=True)
class CaseTarget(Generic[R]):
    """How the case service reaches one kind of target."""

    type: TargetType
    lock: Callable[[Session, str], R | None]  # the row locked (FOR UPDATE) and re-read, or None
    notify: Callable[[Session, R, CaseEntry], None]  # write the webhook event of a change (outbox)


def _locked(db_session: Session, target: CaseTarget[R], target_id: str) -> R:
    row = target.lock(db_session, target_id)
    if row is None:
        raise NotFound(
            f"{target.type} {target_id!r} not found",
            detail=[{"field": "id", "message": f"unknown {target.type}"}],
        )
    return row


def _open_case(target: CaseTarget[R], row: R, what: str) -> None:
    if row.status == "closed":
        raise Conflict(
            f"{target.type} {row.id!r} is closed; it cannot be {what}",
            detail=[{"field": "status", "message": "closed"}],
        )


def record(
    db_session: Session,
    target_type: str,
    row: CaseRow,
    *,
    actor: str,
    action: str,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
    feedback: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> CaseEntry:
    """Keep one history entry (flushed)."""
    entry = CaseEntry(
        target_type=target_type,
        target_id=row.id,
        at=at or utcnow(),
        actor=actor[:200],
        action=action,
        from_status=from_status,
        to_status=to_status,
        owner=row.owner,
        note=note,
        feedback=feedback,
        details=details,
    )
    db_session.add(entry)
    db_session.flush()
    return entry


def _changed(
    db_session: Session, target: CaseTarget[R], row: R, now: datetime, **entry: Any
) -> tuple[R, CaseEntry]:
    row.updated_at = now
    row.revision += 1
    db_session.flush()
    saved = record(db_session, target.type, row, at=now, **entry)
    target.notify(db_session, row, saved)
    return row, saved


def transition(
    *,
    db_session: Session,
    target: CaseTarget[R],
    target_id: str,
    to: CaseStatus,
    actor: str,
    note: str | None = None,
    feedback: str | None = None,
) -> tuple[R, CaseEntry]:
    """Move the case to ``to`` (409 unless allowed from its status, see ``lifecycle.ALLOWED_FROM``), with an
    optional note (also the target's latest ``note``) and feedback (``useful`` | ``not_useful``)."""
    row = _locked(db_session, target, target_id)
    allowed = ALLOWED_FROM[to]
    if row.status not in allowed:
        raise Conflict(
            f"{target.type} {target_id!r} is {row.status}; it cannot become {to}",
            detail=[{"field": "status", "message": f"allowed from: {', '.join(allowed)}"}],
        )
    now = utcnow()
    before = row.status
    row.status = to
    if to == "acknowledged":
        row.acknowledged_at = now
    elif to == "resolved":
        row.resolved_at = now
    else:
        row.closed_at = now
    if note is not None:
        row.note = note
    if feedback is not None:
        row.feedback, row.feedback_at = feedback, now
    return _changed(
        db_session,
        target,
        row,
        now,
        actor=actor,
        action=to,
        from_status=before,
        to_status=to,
        note=note,
        feedback=feedback,
    )


def assign(
    *,
    db_session: Session,
    target: CaseTarget[R],
    target_id: str,
    owner: str | None,
    actor: str,
    note: str | None = None,
) -> tuple[R, CaseEntry]:
    """Give the case an owner (None: unassign); 409 once closed. The status does not change."""
    row = _locked(db_session, target, target_id)
    _open_case(target, row, "assigned")
    previous = row.owner
    row.owner = owner
    if note is not None:
        row.note = note
    return _changed(
        db_session,
        target,
        row,
        utcnow(),
        actor=actor,
        action="assigned",
        note=note,
        details={"previous_owner": previous},
    )


def add_note(
    *, db_session: Session, target: CaseTarget[R], target_id: str, note: str, actor: str
) -> tuple[R, CaseEntry]:
    """Add a note (also the target's latest ``note``), in any status."""
    row = _locked(db_session, target, target_id)
    row.note = note
    return _changed(db_session, target, row, utcnow(), actor=actor, action="note", note=note)


def history(*, db_session: Session, target_type: str, target_id: str) -> list[CaseEntry]:
    """The case's entries, oldest first."""
    stmt = (
        select(CaseEntry)
        .where(CaseEntry.target_type == target_type, CaseEntry.target_id == target_id)
        .order_by(CaseEntry.id)
    )
    return list(db_session.scalars(stmt))


def entry_out(entry: CaseEntry) -> CaseEntryOut:
    return CaseEntryOut.model_validate(entry, from_attributes=True)


def entry_payload(entry: CaseEntry) -> dict[str, Any]:
    """A history entry as sent in webhook events (``change``)."""
    return entry_out(entry).model_dump(mode="json", exclude={"target_type", "target_id"})
