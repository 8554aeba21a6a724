"""The one case lifecycle (pure): ``new -> acknowledged (in progress) -> resolved -> closed``.

``acknowledged`` is the "in progress" step (the name the alert API has always used, kept for backward
compatibility); ``new -> resolved`` is allowed too. Each open step has an SLA counted from the case's
creation: ``new`` is overdue after ``alert_ack_sla_s``, ``acknowledged`` after ``alert_resolve_sla_s``,
``resolved`` (not yet closed) after ``alert_close_sla_s``; ``closed`` is never overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from nlp_service.config import Settings

CaseStatus = Literal["new", "acknowledged", "resolved", "closed"]
TargetType = Literal["alert", "incident"]
Feedback = Literal["useful", "not_useful"]
Action = Literal[
    "acknowledged", "resolved", "closed", "assigned", "note", "feedback", "sensitivity_tightened"
]

CASE_STATUSES: tuple[CaseStatus, ...] = ("new", "acknowledged", "resolved", "closed")
OPEN_STATUSES: tuple[CaseStatus, ...] = ("new", "acknowledged")
DONE_STATUSES: tuple[CaseStatus, ...] = ("resolved", "closed")
FEEDBACK: tuple[Feedback, ...] = ("useful", "not_useful")

ALLOWED_FROM: dict[CaseStatus, tuple[CaseStatus, ...]] = {
    "acknowledged": ("new",),
    "resolved": ("new", "acknowledged"),
    "closed": ("resolved",),
}
"""Target status -> the statuses it may be reached from (anything else is a 409)."""


@dataclass(frozen=True)
class Slas:
    """Seconds after creation by which each open step must be left."""

    acknowledge_s: float
    resolve_s: float
    close_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Slas:
        return cls(settings.alert_ack_sla_s, settings.alert_resolve_sla_s, settings.alert_close_sla_s)

    def of(self, status: str) -> float | None:
        """The SLA of a step (None: ``closed``, or unknown)."""
        return {"new": self.acknowledge_s, "acknowledged": self.resolve_s, "resolved": self.close_s}.get(
            status
        )


def due_at(status: str, created_at: datetime, slas: Slas) -> datetime | None:
    """When the current step is due (None: closed)."""
    sla = slas.of(status)
    return None if sla is None else created_at + timedelta(seconds=sla)


def is_overdue(status: str, created_at: datetime, slas: Slas, now: datetime) -> bool:
    due = due_at(status, created_at, slas)
    return due is not None and now > due
