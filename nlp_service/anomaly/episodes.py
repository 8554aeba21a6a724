"""Episodes and dedup: firings become created or updated alerts (one alert per topic x episode).

Firings are grouped by (topic, kind, direction) and processed oldest first; a firing joins an open alert of
that group whose window it overlaps or follows within ``alert_episode_gap_buckets`` buckets (of the firing's
size), so hourly and daily firings of one incident, and one incident over several buckets, make one alert
that is *updated* while it lasts. Dedup between the topic series and its segment series: the alert is a
topic-level alert (segment ``all``) as soon as the topic's total series fired in the episode; segment series
that fired too are only listed in the explanation (``segments_fired``), and the over-indexing segment values
are named there (``over_indexing``). Only when the topic's total series did not fire is the alert a segment
alert, on the segment series with the strongest firing; it is promoted to topic level if the total series
fires later in the episode. A resolved alert is never reopened: a later firing starts a new alert (a re-scan
of buckets it covers raises nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.anomaly import explain
from nlp_service.anomaly.rules import CP_MIN_SIZE, Firing
from nlp_service.anomaly.tables import Alert
from nlp_service.cases.lifecycle import DONE_STATUSES
from nlp_service.config import Settings
from nlp_service.topics.tables import ALL_SEGMENT


@dataclass
class Touched:
    alert: Alert
    created: bool
    before: tuple[Any, ...] | None

    @property
    def changed(self) -> bool:
        """New, or changed by this run (else a re-scan of buckets already accounted for)."""
        return self.created or fingerprint(self.alert) != self.before


def fingerprint(a: Alert) -> tuple[Any, ...]:
    ex = a.explanation or {}
    return (
        a.window_start,
        a.window_end,
        a.segment,
        a.segment_value,
        a.severity,
        a.peak_at,
        a.bucket,
        round(a.observed, 6),
        a.buckets_fired,
        tuple(ex.get("segments_fired", [])),
    )


def _excess(f: Firing) -> float:
    """The excess comments severity grades: a level shift's over the buckets establishing it, a spike's in
    its peak bucket (a window's per bucket: a surge of several hours is graded as strong as its hours are)."""
    if f.kind == "level_shift":
        return abs(f.observed - f.expected) * CP_MIN_SIZE
    return abs(f.observed - f.expected) / f.buckets


def _joint(f: Firing, ex: dict[str, Any]) -> dict[str, Any]:
    """The explanation's ``joint`` entry for a firing of the joint test (``anomaly.joint``): the strongest
    such test of the episode (``buckets``: the width of the window tested, 1 for a single bucket); empty
    otherwise."""
    held = ex.get("joint")
    if f.joint is None or (held and held["p_value"] <= f.joint.p_value):
        return {}
    return {
        "joint": {"segment": f.series_label, "bucket": f.bucket, "buckets": f.buckets, **f.joint.to_dict()}
    }


def _set_peak(alert: Alert, f: Firing, ex: dict[str, Any]) -> None:
    """The peak firing's figures on the alert; ``ex`` (the explanation being built) records how many buckets
    they sum (``peak_buckets``: more than one for a window of ``detectors.windows``)."""
    alert.bucket, alert.peak_at = f.bucket, f.start
    alert.observed, alert.baseline = float(f.observed), float(f.expected)
    alert.score, alert.p_value = float(f.score), f.p_value
    ex["peak_buckets"] = f.buckets


def _new_alert(f: Firing, now: datetime) -> Alert:
    alert = Alert(
        id=f"alr_{uuid.uuid4().hex}",
        topic_id=f.topic_id,
        segment=f.segment,
        segment_value=f.segment_value,
        kind=f.kind,
        direction=f.direction,
        status="new",
        severity=explain.severity(f.score, _excess(f)),
        window_start=f.start,
        window_end=f.end,
        buckets_fired=1,
        revision=1,
        created_at=now,
        updated_at=now,
    )
    ex = {"fired": [f"{f.bucket}@{f.start.isoformat()}"], "segments_fired": [], **_joint(f, {})}
    _set_peak(alert, f, ex)
    alert.explanation = ex
    return alert


def _note_segment(ex: dict[str, Any], label: str, excess: float) -> None:
    """Record a segment series' strongest excess in the episode (``segments_peak``: label -> comments above
    the expectation per bucket), so the one carrying most of a topic alert comes first
    (``incidents.record``)."""
    peaks = dict(ex.get("segments_peak") or {})
    peaks[label] = max(float(peaks.get(label, 0.0)), round(excess, 3))
    ex["segments_peak"] = peaks


def _apply(alert: Alert, f: Firing) -> None:
    """Extend an open alert with a firing of the same episode (see the module docstring for the rule)."""
    ex = dict(alert.explanation or {})
    fired = list(ex.get("fired", []))
    segs = list(ex.get("segments_fired", []))
    alert.window_start = min(alert.window_start, f.start)
    alert.window_end = max(alert.window_end, f.end)
    if f.is_topic_level and alert.segment != ALL_SEGMENT:  # promotion: the topic's total series fired too
        segs.append(f"{alert.segment}={alert.segment_value}")
        _note_segment(ex, segs[-1], explain.peak_excess(alert))
        alert.segment, alert.segment_value = ALL_SEGMENT, ALL_SEGMENT
        fired = []
        _set_peak(alert, f, ex)
    primary = (f.segment, f.segment_value) == (alert.segment, alert.segment_value)
    if primary:
        tag = f"{f.bucket}@{f.start.isoformat()}"
        if tag not in fired:
            fired.append(tag)
        if f.score > alert.score:
            _set_peak(alert, f, ex)
        sev = explain.severity(f.score, _excess(f))
        alert.severity = explain.max_severity(alert.severity, sev)
    else:
        segs.append(f.series_label)
        _note_segment(ex, f.series_label, _excess(f))
    ex.update(_joint(f, ex))
    ex["fired"], ex["segments_fired"] = sorted(fired), sorted(set(segs))
    alert.buckets_fired = max(1, len(fired))
    alert.explanation = ex


def _group(f: Firing) -> list[Any]:
    return [Alert.topic_id == f.topic_id, Alert.kind == f.kind, Alert.direction == f.direction]


def _covered_by_resolved(db_session: Session, f: Firing) -> bool:
    """Whether a resolved alert of the firing's group already covers its buckets (a re-scan of them)."""
    stmt = select(Alert.id).where(
        *_group(f), Alert.status.in_(DONE_STATUSES), Alert.window_start <= f.start, Alert.window_end >= f.end
    )
    return db_session.scalars(stmt.limit(1)).first() is not None


def _find_open(
    db_session: Session, pending: list[Alert], f: Firing, settings: Settings, *, lock: bool = True
) -> Alert | None:
    """An unresolved alert of the firing's topic/kind/direction whose window it overlaps or follows.

    With ``lock``, the row is locked (PostgreSQL) and re-read as locked, and the status is checked on that
    version: a concurrent acknowledge/resolve either committed before (seen here; a resolved alert is not
    updated) or waits for this run's commit, so revisions only increase and nothing follows
    ``alert.resolved``."""
    gap = f.gap(settings)

    def joins(a: Alert) -> bool:
        return a.window_start - gap <= f.end and f.start <= a.window_end + gap

    for a in pending:
        if (a.topic_id, a.kind, a.direction) == (f.topic_id, f.kind, f.direction) and joins(a):
            return a
    stmt = (
        select(Alert)
        .where(
            *_group(f),
            Alert.status.not_in(DONE_STATUSES),
            Alert.window_start <= f.end + gap,
            Alert.window_end >= f.start - gap,
        )
        .order_by(Alert.window_end.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    alert = db_session.scalars(stmt.with_for_update() if lock else stmt).first()
    return alert if alert is not None and alert.status not in DONE_STATUSES else None


def merge_firings(
    *,
    db_session: Session,
    settings: Settings,
    firings: Iterable[Firing],
    now: datetime,
    preview: bool = False,
) -> list[Touched]:
    """Turn firings into created/updated alerts (not yet explained, no events yet). Firings inside a
    resolved alert's window are already accounted for and skipped. With ``preview``, nothing is locked,
    added or flushed (run it with autoflush off and roll back: the open alerts are changed in the session)."""
    touched: dict[str, Touched] = {}
    # topic-level firings first at equal start, so a segment firing of the same bucket joins their alert
    order = sorted(firings, key=lambda f: (f.start, not f.is_topic_level, -f.score))
    for f in order:
        if _covered_by_resolved(db_session, f):
            continue
        alert = _find_open(db_session, [t.alert for t in touched.values()], f, settings, lock=not preview)
        if alert is None and _covered_by_resolved(db_session, f):
            continue  # resolved while this run waited for its row lock
        if alert is None:
            alert = _new_alert(f, now)
            if not preview:
                db_session.add(alert)
            touched[alert.id] = Touched(alert, True, None)
            continue
        if alert.id not in touched:
            touched[alert.id] = Touched(alert, False, fingerprint(alert))
        _apply(alert, f)
    if not preview:
        db_session.flush()
    return list(touched.values())
