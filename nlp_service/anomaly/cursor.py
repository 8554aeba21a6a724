"""The detector's state row: where the last runs ended (:class:`ScanCursor`) and the lock a run's write phase
takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.anomaly.tables import AlertDetectorState
from nlp_service.db import dialect_insert

DETECTOR = "topic-volume"


@dataclass(frozen=True)
class ScanCursor:
    """Where the detector's last runs ended: the end of the newest bucket checked, per bucket size, and the
    highest comment row id seen by each of the last two runs. Late arrivals are the comments above the
    *older* watermark, so a comment whose row id was taken before a run but committed after it still counts.
    """

    scanned_until: dict[str, datetime]
    row_ids: tuple[int, int] = (0, 0)

    @classmethod
    def load(cls, raw: Mapping[str, Any] | None) -> ScanCursor | None:
        if not raw:
            return None
        until = {b: datetime.fromisoformat(t) for b, t in (raw.get("scanned_until") or {}).items()}
        older, newer = raw.get("row_ids") or (0, 0)
        return cls(until, (int(older), int(newer)))

    def dump(self) -> dict[str, Any]:
        return {
            "scanned_until": {b: t.isoformat() for b, t in sorted(self.scanned_until.items())},
            "row_ids": list(self.row_ids),
        }

    def advance(self, ends: Mapping[str, datetime], max_row_id: int) -> ScanCursor:
        """This cursor after a run that checked up to ``ends``; row ids move on only for a run at least as
        recent as every bucket size's last one (a past re-scan does not look at newer buckets)."""
        until = {b: max(t, self.scanned_until.get(b, t)) for b, t in ends.items()}
        until = {**self.scanned_until, **until}
        current = all(ends.get(b, t) >= t for b, t in self.scanned_until.items())
        if not current or max_row_id <= self.row_ids[1]:
            return ScanCursor(until, self.row_ids)
        return ScanCursor(until, (self.row_ids[1], max_row_id))


def read_cursor(*, db_session: Session) -> ScanCursor | None:
    state = db_session.get(AlertDetectorState, DETECTOR)
    return ScanCursor.load(state.cursor) if state is not None else None


def lock(db_session: Session, now: datetime, name: str = DETECTOR) -> AlertDetectorState:
    """Take the detector ``name``'s row lock (PostgreSQL: row lock; SQLite: the write lock) for this
    transaction."""
    db_session.execute(
        dialect_insert(db_session, AlertDetectorState)
        .values(name=name, last_run_at=now)
        .on_conflict_do_nothing()
    )
    state = db_session.scalars(
        select(AlertDetectorState)
        .where(AlertDetectorState.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return state
