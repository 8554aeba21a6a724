"""Feedback on alerts (``useful`` | ``not_useful``, given on acknowledge or resolve): the summary per topic x
detector kind, and the rule that tightens a topic's sensitivity (opt-in, ``NLP_FEEDBACK_TIGHTEN``).

The rule: among a topic's last ``feedback_tighten_window`` rated alerts, rated since its last tightening,
at least ``feedback_tighten_not_useful`` are not useful -> the topic's preset moves one step down (high ->
medium -> low; ``anomaly.sensitivity``). Applying it is a taxonomy change (``anomaly.feedback_flow``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from nlp_service.anomaly.schemas import FeedbackCount, FeedbackQuery, FeedbackRow, FeedbackSummary
from nlp_service.anomaly.tables import Alert, AlertKind
from nlp_service.cases.tables import CaseEntry

TIGHTENED = "sensitivity_tightened"  # the case-history action that records a tightening
TIGHTER: dict[str, str] = {"high": "medium", "medium": "low"}  # one step less sensitive (fewer alerts)


def count(useful: int, not_useful: int) -> FeedbackCount:
    rated = useful + not_useful
    return FeedbackCount(
        useful=useful,
        not_useful=not_useful,
        rated=rated,
        useful_share=round(useful / rated, 4) if rated else None,
    )


def summary(
    *, db_session: Session, query: FeedbackQuery, topic_labels: Mapping[str, str] | None = None
) -> FeedbackSummary:
    """Counts and useful share per topic x kind, most rated first."""
    cond: list[ColumnElement[bool]] = [Alert.feedback.is_not(None)]
    if query.topic:
        cond.append(Alert.topic_id.in_(query.topic))
    if query.since:
        cond.append(Alert.created_at >= query.since)
    if query.until:
        cond.append(Alert.created_at < query.until)
    rows = db_session.execute(
        select(Alert.topic_id, Alert.kind, Alert.feedback, func.count())
        .where(*cond)
        .group_by(Alert.topic_id, Alert.kind, Alert.feedback)
    ).all()
    cells: dict[tuple[str, AlertKind], list[int]] = {}
    for topic_id, kind, feedback, n in rows:
        cell = cells.setdefault((topic_id, kind), [0, 0])
        cell[0 if feedback == "useful" else 1] += int(n)
    labels = topic_labels or {}
    items = [
        FeedbackRow(topic_id=topic, topic_label=labels.get(topic), kind=kind, **count(*c).model_dump())
        for (topic, kind), c in cells.items()
    ]
    items.sort(key=lambda r: (-r.rated, r.topic_id, r.kind))
    return FeedbackSummary(
        items=items, total=count(sum(r.useful for r in items), sum(r.not_useful for r in items))
    )


@dataclass(frozen=True)
class Tightening:
    """A decided tightening of one topic's sensitivity."""

    topic_id: str
    before: str
    after: str
    not_useful: int
    window: int

    @property
    def change(self) -> str:
        return (
            f"feedback: {self.not_useful} of the last {self.window} rated alerts of topic {self.topic_id} "
            f"not useful; sensitivity {self.before} -> {self.after}"
        )


def decide(
    votes: Sequence[str], *, topic_id: str, current: str, not_useful: int, window: int
) -> Tightening | None:
    """The tightening the newest ``votes`` (newest first) call for, if any (pure)."""
    recent = list(votes[:window])
    bad = sum(v == "not_useful" for v in recent)
    after = TIGHTER.get(current)
    if bad < not_useful or after is None:
        return None
    return Tightening(topic_id=topic_id, before=current, after=after, not_useful=bad, window=len(recent))


def recent_votes(*, db_session: Session, topic_id: str, window: int) -> list[str]:
    """The topic's newest feedback (newest first), given since its last tightening."""
    last = db_session.scalar(
        select(func.max(CaseEntry.at))
        .join(Alert, Alert.id == CaseEntry.target_id)
        .where(CaseEntry.target_type == "alert", CaseEntry.action == TIGHTENED, Alert.topic_id == topic_id)
    )
    cond = [Alert.topic_id == topic_id, Alert.feedback.is_not(None)]
    if last is not None:
        cond.append(Alert.feedback_at > last)
    stmt = select(Alert.feedback).where(*cond).order_by(Alert.feedback_at.desc(), Alert.id).limit(window)
    return [str(v) for v in db_session.scalars(stmt)]
