"""Alert detection over topic-volume series, alert lifecycle, and the series views for charts.

**Series.** ``topic_counts`` (maintained on ingest) gives, per bucket size (hour, day), the comment count of
every topic in total (segment ``all``) and per value of each segment field (region, touchpoint, source);
missing buckets are zeros. ``_all`` (every comment) is the denominator of shares and is never alerted on.

**Detection** (:func:`detect`, run by the worker job ``alert-detection`` and ``POST /v1/detect`` through
``anomaly.flows``): a read phase (:func:`scan`, no locks) then a short write phase (:func:`record`). For each
bucket size and series, the pure detectors of ``anomaly.detectors`` score the completed buckets since the last
run ended (its cursor; at least ``alert_rescan_buckets``, at most ``alert_max_catchup_s`` back), and those of
comments stored since (late arrivals, found by a row-id watermark)
(``SeasonalSpikeDetector``: spikes and drops against a history-only seasonal baseline, with the
minimum-volume guard ``alert_min_volume``) and the whole series offline (``PeltChangePointDetector``: level
shifts, reported while the change point is recent). Each anomalous series-bucket is a *firing*.

**Episodes and dedup** (one alert per topic x episode). Firings are grouped by (topic, kind, direction) and
processed oldest first; a firing joins an open alert of that group whose window it overlaps or follows within
``alert_episode_gap_buckets`` buckets (of the firing's size), so hourly and daily firings of one incident, and
one incident over several buckets, make one alert that is *updated* while it lasts. Dedup between the topic
series and its segment series: the alert is a topic-level alert (segment ``all``) as soon as the topic's total
series fired in the episode; segment series that fired too are only listed in the explanation
(``segments_fired``), and the over-indexing segment values are named there (``over_indexing``). Only when the
topic's total series did not fire is the alert a segment alert, on the segment series with the strongest
firing; it is promoted to topic level if the total series fires later in the episode. A resolved alert is
never reopened: a later firing starts a new alert (a re-scan of buckets it covers raises nothing).

**Lifecycle.** ``new -> acknowledged -> resolved`` (``new -> resolved`` is allowed too); anything else is a
409. Overdue: ``new`` for longer than ``alert_ack_sla_s`` or ``acknowledged`` for longer than
``alert_resolve_sla_s`` after creation. Every create/update/resolve writes ``alert.created`` /
``alert.updated`` / ``alert.resolved`` through ``webhooks.service.enqueue_event`` in the caller's transaction.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, case, delete, func, or_, select
from sqlalchemy.orm import Session

from nlp_service.anomaly import explain
from nlp_service.anomaly.detectors import (
    ChangePoint,
    PeltChangePointDetector,
    SeasonalSpikeDetector,
    Series,
    Spike,
    merge_episodes,
)
from nlp_service.anomaly.schemas import (
    AlertOut,
    AlertPage,
    AlertsQuery,
    ChangePointOut,
    DetectResponse,
    EpisodeOut,
    RepresentativeComment,
    SeriesDetectRequest,
    SeriesDetectResponse,
    SeriesPoint,
    SeriesQuery,
    SpikeOut,
    TopicSeriesResponse,
)
from nlp_service.anomaly.tables import Alert, AlertComment, AlertDetectorState
from nlp_service.comments.schemas import CommentFilter
from nlp_service.comments.service import comments_in_window, filter_conditions, topic_series
from nlp_service.comments.tables import ALL_SEGMENT, ALL_TOPICS, Comment, Prediction
from nlp_service.config import Settings
from nlp_service.errors import Conflict, InvalidInput, NotFound
from nlp_service.insights.service import nps as insights_nps
from nlp_service.webhooks.service import enqueue_event

log = logging.getLogger(__name__)

DETECTOR = "topic-volume"
BUCKET_SECONDS = {"hour": 3600, "day": 86400}
SEASON_SECONDS = {"hour": 86400, "day": 7 * 86400}
CP_MIN_SIZE = 5  # buckets on each side of a level shift
MAX_CHART_POINTS = 20_000
MAX_WINDOW_COMMENTS = 2_000  # comments read to pick representatives


def utcnow() -> datetime:
    return datetime.now(UTC)


def floor_bucket(ts: datetime, bucket: str) -> datetime:
    """Start (UTC) of the bucket holding ``ts``."""
    bs = BUCKET_SECONDS[bucket]
    epoch = int(ts.astimezone(UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % bs, UTC)


# -- series ----------------------------------------------------------------------------------------------
SeriesKey = tuple[str, str, str]  # (topic_id, segment, segment_value)


@dataclass
class SeriesSet:
    """Dense count series on one grid: ``counts[(topic, segment, value)]``; ``_all`` holds the totals."""

    bucket: str
    start: datetime
    n: int
    counts: dict[SeriesKey, np.ndarray]

    @property
    def bucket_seconds(self) -> int:
        return BUCKET_SECONDS[self.bucket]

    def timestamps(self) -> np.ndarray:
        return int(self.start.timestamp()) + np.arange(self.n, dtype=np.int64) * self.bucket_seconds

    def time_at(self, index: int) -> datetime:
        return self.start + timedelta(seconds=index * self.bucket_seconds)

    def since_first_data(self) -> SeriesSet:
        """Drop the buckets before the first comment of all (before data collection began, zeros are not
        counts, and a series starting with them would "spike" when collection starts)."""
        totals = self.counts.get((ALL_TOPICS, ALL_SEGMENT, ALL_SEGMENT))
        nonzero = np.flatnonzero(totals) if totals is not None else np.zeros(0, np.int64)
        first = int(nonzero[0]) if nonzero.size else self.n
        if first == 0:
            return self
        counts = {k: v[first:] for k, v in self.counts.items()}
        return SeriesSet(self.bucket, self.time_at(first), self.n - first, counts)


def load_series(
    *,
    db_session: Session,
    bucket: str,
    start: datetime,
    end: datetime,
    segments: Sequence[str],
    topic_ids: Sequence[str] | None = None,
    segment_value: str | None = None,
) -> SeriesSet:
    """Counts in ``[start, end)`` (bucket-aligned) for the totals and each segment field, zeros filled."""
    bs = BUCKET_SECONDS[bucket]
    n = int((end - start).total_seconds()) // bs
    counts: dict[SeriesKey, np.ndarray] = {}
    for seg in (ALL_SEGMENT, *segments):
        points = topic_series(
            db_session=db_session,
            bucket=bucket,
            start=start,
            end=end,
            topic_ids=topic_ids,
            segment=seg,
            segment_value=segment_value if seg != ALL_SEGMENT else None,
        )
        for p in points:
            arr = counts.get((p.topic_id, p.segment, p.segment_value))
            if arr is None:
                arr = counts[(p.topic_id, p.segment, p.segment_value)] = np.zeros(n)
            arr[int((p.bucket_start - start).total_seconds()) // bs] += max(p.count, 0)
    return SeriesSet(bucket, start, n, counts)


def spike_detector(settings: Settings, bucket: str) -> SeasonalSpikeDetector:
    """The spike/drop detector configured for a bucket size (daily seasonality for hours, weekly for days)."""
    hourly = bucket == "hour"
    return SeasonalSpikeDetector(
        season_seconds=SEASON_SECONDS[bucket],
        level_window=24 if hourly else 14,
        dispersion_window=168 if hourly else 56,
        p_threshold=settings.alert_p_threshold,
        min_count=float(settings.alert_min_volume),
        min_history=settings.alert_min_history_hours if hourly else settings.alert_min_history_days,
    )


def changepoint_detector(bucket: str) -> PeltChangePointDetector:
    return PeltChangePointDetector(season_seconds=SEASON_SECONDS[bucket], min_size=CP_MIN_SIZE)


# -- firings ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Firing:
    """One anomalous bucket (or, for level shifts, the buckets establishing the new level) of one series."""

    bucket: str
    topic_id: str
    segment: str
    segment_value: str
    kind: str  # spike | drop | level_shift
    direction: str  # up | down
    start: datetime
    end: datetime  # exclusive
    observed: float
    expected: float
    score: float
    p_value: float | None

    @property
    def is_topic_level(self) -> bool:
        return self.segment == ALL_SEGMENT

    @property
    def series_label(self) -> str:
        return "all" if self.is_topic_level else f"{self.segment}={self.segment_value}"

    def gap(self, settings: Settings) -> timedelta:
        return timedelta(seconds=BUCKET_SECONDS[self.bucket] * settings.alert_episode_gap_buckets)


def _spike_firing(key: SeriesKey, ss: SeriesSet, sp: Spike) -> Firing:
    start = ss.time_at(sp.index)
    return Firing(
        bucket=ss.bucket,
        topic_id=key[0],
        segment=key[1],
        segment_value=key[2],
        kind=sp.kind,
        direction="up" if sp.kind == "spike" else "down",
        start=start,
        end=start + timedelta(seconds=ss.bucket_seconds),
        observed=sp.observed,
        expected=sp.expected,
        score=sp.score,
        p_value=sp.p_value,
    )


def _shift_firing(key: SeriesKey, ss: SeriesSet, cp: ChangePoint) -> Firing:
    start = ss.time_at(cp.index)
    # Anscombe-scale difference of the two levels over the establishing buckets: ~N(0, 1) units for Poisson
    z = abs(2 * (math.sqrt(cp.after_mean + 0.375) - math.sqrt(cp.before_mean + 0.375))) * math.sqrt(
        CP_MIN_SIZE
    )
    return Firing(
        bucket=ss.bucket,
        topic_id=key[0],
        segment=key[1],
        segment_value=key[2],
        kind="level_shift",
        direction="up" if cp.kind == "level_up" else "down",
        start=start,
        end=start + timedelta(seconds=CP_MIN_SIZE * ss.bucket_seconds),
        observed=cp.after_mean,
        expected=cp.before_mean,
        score=z,
        p_value=None,
    )


def scan_series(
    key: SeriesKey, values: np.ndarray, ss: SeriesSet, settings: Settings, *, scan: int
) -> list[Firing]:
    """Firings of one series in its newest ``scan`` buckets (level shifts: change points still recent)."""
    n = values.size
    if n == 0 or float(values.max()) < settings.alert_min_volume:
        return []  # the volume guard can never pass (spikes need the count, drops the expectation)
    series = Series(ss.timestamps(), values.astype(np.float64), ss.bucket_seconds)
    spikes = spike_detector(settings, ss.bucket).fit(series).predict()
    out = [_spike_firing(key, ss, sp) for sp in spikes if sp.index >= n - scan]
    cp_det = changepoint_detector(ss.bucket)
    for cp in cp_det.fit(series).predict():
        if cp.index >= n - scan - CP_MIN_SIZE and _confirmed_shift(values, cp, spikes, settings, cp_det):
            out.append(_shift_firing(key, ss, cp))
    return out


def _confirmed_shift(
    values: np.ndarray,
    cp: ChangePoint,
    spikes: Sequence[Spike],
    settings: Settings,
    det: PeltChangePointDetector,
) -> bool:
    """Keep a level shift only if robust and not a spike in disguise: the medians of the ``CP_MIN_SIZE``
    buckets on each side differ as much as the detector requires, the new or old level passes the volume
    guard, and no spike/drop of the same direction lies within the buckets establishing the shift."""
    w = CP_MIN_SIZE
    before = float(np.median(values[max(0, cp.index - w) : cp.index]))
    after = float(np.median(values[cp.index : cp.index + w]))
    change = abs(after - before)
    if change < det.min_abs_change or change < det.min_relative_change * max(before, after):
        return False
    if (after > before) != (cp.kind == "level_up") or max(before, after) < settings.alert_min_volume:
        return False
    same = "spike" if cp.kind == "level_up" else "drop"
    return not any(sp.kind == same and cp.index - w <= sp.index < cp.index + w for sp in spikes)


# -- alerts: episode merging -----------------------------------------------------------------------------
@dataclass
class _Touched:
    alert: Alert
    created: bool
    before: tuple[Any, ...] | None


def _fingerprint(a: Alert) -> tuple[Any, ...]:
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
    if f.kind == "level_shift":
        return abs(f.observed - f.expected) * CP_MIN_SIZE
    return abs(f.observed - f.expected)


def _set_peak(alert: Alert, f: Firing) -> None:
    alert.bucket, alert.peak_at = f.bucket, f.start
    alert.observed, alert.baseline = float(f.observed), float(f.expected)
    alert.score, alert.p_value = float(f.score), f.p_value


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
        explanation={"fired": [f"{f.bucket}@{f.start.isoformat()}"], "segments_fired": []},
        revision=1,
        created_at=now,
        updated_at=now,
    )
    _set_peak(alert, f)
    return alert


def _apply(alert: Alert, f: Firing) -> None:
    """Extend an open alert with a firing of the same episode (see the module docstring for the rule)."""
    ex = dict(alert.explanation or {})
    fired = list(ex.get("fired", []))
    segs = list(ex.get("segments_fired", []))
    alert.window_start = min(alert.window_start, f.start)
    alert.window_end = max(alert.window_end, f.end)
    if f.is_topic_level and alert.segment != ALL_SEGMENT:  # promotion: the topic's total series fired too
        segs.append(f"{alert.segment}={alert.segment_value}")
        alert.segment, alert.segment_value = ALL_SEGMENT, ALL_SEGMENT
        fired = []
        _set_peak(alert, f)
    primary = (f.segment, f.segment_value) == (alert.segment, alert.segment_value)
    if primary:
        tag = f"{f.bucket}@{f.start.isoformat()}"
        if tag not in fired:
            fired.append(tag)
        if f.score > alert.score:
            _set_peak(alert, f)
        sev = explain.severity(f.score, _excess(f))
        alert.severity = explain.max_severity(alert.severity, sev)
    elif f.series_label not in segs:
        segs.append(f.series_label)
    ex["fired"], ex["segments_fired"] = sorted(fired), sorted(set(segs))
    alert.buckets_fired = max(1, len(fired))
    alert.explanation = ex


def _group(f: Firing) -> list[Any]:
    return [Alert.topic_id == f.topic_id, Alert.kind == f.kind, Alert.direction == f.direction]


def _covered_by_resolved(db_session: Session, f: Firing) -> bool:
    """Whether a resolved alert of the firing's group already covers its buckets (a re-scan of them)."""
    stmt = select(Alert.id).where(
        *_group(f), Alert.status == "resolved", Alert.window_start <= f.start, Alert.window_end >= f.end
    )
    return db_session.scalars(stmt.limit(1)).first() is not None


def _find_open(db_session: Session, pending: list[Alert], f: Firing, settings: Settings) -> Alert | None:
    """An unresolved alert of the firing's topic/kind/direction whose window it overlaps or follows.

    The row is locked (PostgreSQL) and re-read as locked, and the status is checked on that version: a
    concurrent acknowledge/resolve either committed before (seen here; a resolved alert is not updated) or
    waits for this run's commit, so revisions only increase and nothing follows ``alert.resolved``."""
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
            Alert.status != "resolved",
            Alert.window_start <= f.end + gap,
            Alert.window_end >= f.start - gap,
        )
        .order_by(Alert.window_end.desc())
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    alert = db_session.scalars(stmt).first()
    return alert if alert is not None and alert.status != "resolved" else None


def merge_firings(
    *, db_session: Session, settings: Settings, firings: Iterable[Firing], now: datetime
) -> list[_Touched]:
    """Turn firings into created/updated alerts (not yet explained, no events yet). Firings inside a
    resolved alert's window are already accounted for and skipped."""
    touched: dict[str, _Touched] = {}
    # topic-level firings first at equal start, so a segment firing of the same bucket joins their alert
    order = sorted(firings, key=lambda f: (f.start, not f.is_topic_level, -f.score))
    for f in order:
        if _covered_by_resolved(db_session, f):
            continue
        alert = _find_open(db_session, [t.alert for t in touched.values()], f, settings)
        if alert is None and _covered_by_resolved(db_session, f):
            continue  # resolved while this run waited for its row lock
        if alert is None:
            alert = _new_alert(f, now)
            db_session.add(alert)
            touched[alert.id] = _Touched(alert, True, None)
            continue
        if alert.id not in touched:
            touched[alert.id] = _Touched(alert, False, _fingerprint(alert))
        _apply(alert, f)
    db_session.flush()
    return list(touched.values())


# -- explanation -----------------------------------------------------------------------------------------
def _segment_filter(alert: Alert) -> dict[str, list[str]]:
    return {} if alert.segment == ALL_SEGMENT else {alert.segment: [alert.segment_value]}


def _hour_sums(
    db_session: Session, topic_id: str, segment: str, start: datetime, end: datetime, value: str | None = None
) -> dict[str, int]:
    """Sum of hourly counts per segment value of one topic in ``[start, end)``."""
    out: dict[str, int] = defaultdict(int)
    for p in topic_series(
        db_session=db_session,
        bucket="hour",
        start=start,
        end=end,
        topic_ids=[topic_id],
        segment=segment,
        segment_value=value,
    ):
        out[p.segment_value] += p.count
    return dict(out)


def _mood(db_session: Session, filters: CommentFilter) -> tuple[int, float | None, float | None]:
    """(comments, negative share, mean emotional intensity) of the comments matching ``filters``."""
    n, neg, intensity = db_session.execute(
        select(
            func.count(),
            func.sum(case((Prediction.sentiment_label == "negative", 1), else_=0)),
            func.avg(Prediction.intensity),
        )
        .select_from(Comment)
        .join(Prediction, Prediction.row_id == Comment.row_id)
        .where(*filter_conditions(filters))
    ).one()
    n = int(n or 0)
    return n, (int(neg or 0) / n if n else None), (float(intensity) if intensity is not None else None)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def explain_alert(
    *, db_session: Session, settings: Settings, alert: Alert, topic_label: str | None = None
) -> dict[str, Any]:
    """Compute the alert's explanation and store its representative comments; returns the explanation."""
    ws, we = alert.window_start, alert.window_end
    bs, be = ws - timedelta(days=settings.alert_baseline_days), ws
    seg = _segment_filter(alert)
    win_f = CommentFilter(topic=[alert.topic_id], start=ws, end=we, **seg)
    base_f = CommentFilter(topic=[alert.topic_id], start=bs, end=be, **seg)

    # volume and share of all comments (in the alert's segment, if any)
    seg_name = alert.segment
    seg_value = None if alert.segment == ALL_SEGMENT else alert.segment_value
    w_topic = sum(_hour_sums(db_session, alert.topic_id, seg_name, ws, we, seg_value).values())
    b_topic = sum(_hour_sums(db_session, alert.topic_id, seg_name, bs, be, seg_value).values())
    w_all = sum(_hour_sums(db_session, ALL_TOPICS, seg_name, ws, we, seg_value).values())
    b_all = sum(_hour_sums(db_session, ALL_TOPICS, seg_name, bs, be, seg_value).values())
    window_hours = max((we - ws).total_seconds() / 3600, 1.0)
    baseline_hours = max((be - bs).total_seconds() / 3600, 1.0)
    volume = {
        "window_comments": w_topic,
        "baseline_comments": b_topic,
        "baseline_comments_per_window": round(b_topic * window_hours / baseline_hours, 2),
        "share_of_all": explain.shift(w_topic / w_all if w_all else None, b_topic / b_all if b_all else None),
    }

    over: list[dict[str, Any]] = []
    for fld in settings.alert_segments:
        if fld == alert.segment:
            continue  # a segment alert is already about one value of this field
        window = _hour_sums(db_session, alert.topic_id, fld, ws, we)
        baseline = _hour_sums(db_session, alert.topic_id, fld, bs, be)
        over.extend(o.to_dict() for o in explain.over_indexing(fld, window, baseline))
    over.sort(key=lambda o: -o["excess"])

    nps = explain.nps_impact(
        insights_nps(db_session=db_session, filters=win_f).overall,
        insights_nps(db_session=db_session, filters=base_f).overall,
    )
    _, w_neg, w_int = _mood(db_session, win_f)
    _, b_neg, b_int = _mood(db_session, base_f)

    reps = _store_representatives(db_session, settings, alert, win_f)
    label = topic_label or alert.topic_id
    where = "" if alert.segment == ALL_SEGMENT else f" in {alert.segment} {alert.segment_value}"
    verb = {"spike": "spiked", "drop": "dropped", "level_shift": f"shifted {alert.direction}"}[alert.kind]
    summary = (
        f"{label} comments{where} {verb}: {alert.observed:.0f} in the peak {alert.bucket} vs "
        f"{alert.baseline:.1f} expected (score {alert.score:.1f})"
    )
    if over:
        top = over[0]
        summary += (
            f"; {top['field']} {top['value']} carries {_pct(top['excess_share'])} of the excess "
            f"({_pct(top['window_share'])} of the topic's comments vs {_pct(top['baseline_share'])} usually)"
        )
    if nps["delta"] is not None:
        summary += f"; NPS {nps['window']['nps']:+.0f} vs {nps['baseline']['nps']:+.0f} baseline"
    ex = dict(alert.explanation or {})
    ex.update(
        {
            "summary": summary + ".",
            "baseline": alert.baseline,
            "observed": alert.observed,
            "score": alert.score,
            "p_value": alert.p_value,
            "window": {"start": ws.isoformat(), "end": we.isoformat()},
            "baseline_period": {"start": bs.isoformat(), "end": be.isoformat()},
            "volume": volume,
            "over_indexing": over,
            "nps": nps,
            "negative_share": explain.shift(w_neg, b_neg),
            "intensity": explain.shift(w_int, b_int),
            "sample_comment_ids": [r.id for r in reps],
            "severity_rule": "min(score level, excess level); score |z| >= 6/10/16, excess >= 20/50/200",
        }
    )
    return ex


def _store_representatives(
    db_session: Session, settings: Settings, alert: Alert, filters: CommentFilter
) -> list[Comment]:
    """Replace the alert's representative comments: nearest the centroid of the window's embeddings."""
    assert filters.start is not None and filters.end is not None
    rows = comments_in_window(
        db_session=db_session,
        start=filters.start,
        end=filters.end,
        filters=filters,
        limit=MAX_WINDOW_COMMENTS,
    )
    db_session.execute(delete(AlertComment).where(AlertComment.alert_id == alert.id))
    rows = [r for r in rows if r.embedding is not None and r.embedding.size]
    if not rows:
        return []
    picks = explain.representatives(np.vstack([r.embedding for r in rows]), settings.alert_representatives)
    db_session.add_all(
        AlertComment(alert_id=alert.id, row_id=rows[i].row_id, rank=rank, similarity=sim)
        for rank, (i, sim) in enumerate(picks)
    )
    db_session.flush()
    ids = [rows[i].row_id for i, _ in picks]
    by_row = {c.row_id: c for c in db_session.scalars(select(Comment).where(Comment.row_id.in_(ids)))}
    return [by_row[r] for r in ids if r in by_row]


# -- events ----------------------------------------------------------------------------------------------
def event_segment(alert: Alert) -> str:
    """The ``segment`` webhook filters match: the segment value of a segment alert; for a topic-level alert
    the top over-indexing value (e.g. ``eu-west``) if any, else ``all``."""
    if alert.segment != ALL_SEGMENT:
        return alert.segment_value
    over = (alert.explanation or {}).get("over_indexing") or []
    return str(over[0]["value"]) if over else ALL_SEGMENT


def event_payload(alert: Alert, topic_label: str | None = None) -> dict[str, Any]:
    """``data`` of ``alert.*`` events (``AlertEventData``: ``status`` is open | resolved, ``state`` ours)."""
    return {
        "alert": {
            "id": alert.id,
            "status": "resolved" if alert.status == "resolved" else "open",
            "state": alert.status,
            "severity": alert.severity,
            "kind": alert.kind,
            "direction": alert.direction,
            "topic_id": alert.topic_id,
            "topic_label": topic_label,
            "segment": event_segment(alert),
            "segment_field": alert.segment,
            "segment_value": alert.segment_value,
            "bucket": alert.bucket,
            "started_at": alert.window_start,
            "window_end": alert.window_end,
            "updated_at": alert.updated_at,
            "resolved_at": alert.resolved_at,
            "revision": alert.revision,
            "explanation": alert.explanation,
        }
    }


def emit(db_session: Session, event_type: str, alert: Alert, topic_label: str | None = None) -> None:
    enqueue_event(
        db_session=db_session,
        event_type=event_type,
        payload=event_payload(alert, topic_label),
        topic_id=alert.topic_id,
        segment=event_segment(alert),
        severity=alert.severity,
    )


# -- the detection run -----------------------------------------------------------------------------------
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


@dataclass
class Scan:
    """What the read phase of a run found: firings to merge, counters, and the cursor it reached."""

    at: datetime
    firings: list[Firing]
    series_scanned: int
    buckets_checked: int
    ends: dict[str, datetime]
    max_row_id: int
    seconds: float


def check_at(at: datetime | None, now: datetime | None = None) -> datetime:
    """The evaluation time of a run: ``at`` (default now), never in the future (empty future buckets would
    read as zeros and raise false drop alerts)."""
    now = now or utcnow()
    if at is None:
        return now
    if at > now:
        raise InvalidInput(
            f"at {at.isoformat()} is in the future (server time {now.isoformat()}); "
            "omit it to detect up to now",
            detail=[{"field": "at", "message": "must not be in the future"}],
        )
    return at.astimezone(UTC)


def read_cursor(*, db_session: Session) -> ScanCursor | None:
    state = db_session.get(AlertDetectorState, DETECTOR)
    return ScanCursor.load(state.cursor) if state is not None else None


def _oldest_late_comment(db_session: Session, cursor: ScanCursor | None) -> datetime | None:
    """The earliest ``created_at`` among comments stored since the last runs (None on a first run)."""
    if cursor is None:
        return None
    return db_session.scalar(select(func.min(Comment.created_at)).where(Comment.row_id > cursor.row_ids[0]))


def _scan_buckets(
    settings: Settings,
    bucket: str,
    end: datetime,
    lookback_s: int | None,
    cursor: ScanCursor | None,
    late: datetime | None,
) -> int:
    """How many of the newest buckets before ``end`` to check: the rescan minimum, the asked lookback, and
    (bounded by ``alert_max_catchup_s``) every bucket since the last run's end or the oldest late arrival."""
    bs = BUCKET_SECONDS[bucket]
    scan = max(settings.alert_rescan_buckets, math.ceil((lookback_s or 0) / bs), 1)
    since = [t for t in ((cursor.scanned_until.get(bucket) if cursor else None), late) if t is not None]
    if since:
        earliest = max(
            floor_bucket(min(since), bucket), end - timedelta(seconds=settings.alert_max_catchup_s)
        )
        scan = max(scan, math.ceil((end - earliest).total_seconds() / bs))
    return scan


def scan(
    *,
    db_session: Session,
    settings: Settings,
    at: datetime | None = None,
    lookback_s: int | None = None,
    buckets: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Scan:
    """The read phase of a run (no writes, no locks): load every topic and topic x segment series, run the
    detectors over the buckets to check, and return the firings. ``progress(done, total)`` counts series."""
    t0 = time.perf_counter()
    at = check_at(at)
    cursor = read_cursor(db_session=db_session)
    max_row_id = int(db_session.scalar(select(func.max(Comment.row_id))) or 0)
    late = _oldest_late_comment(db_session, cursor)
    plans: list[tuple[SeriesSet, int]] = []
    ends: dict[str, datetime] = {}
    for bucket in buckets or settings.alert_buckets:
        bs = BUCKET_SECONDS[bucket]
        end = ends[bucket] = floor_bucket(at, bucket)  # end of the newest completed bucket
        n_scan = _scan_buckets(settings, bucket, end, lookback_s, cursor, late)
        history = settings.alert_history_hours if bucket == "hour" else settings.alert_history_days
        start = end - timedelta(seconds=bs * (history + n_scan))
        ss = load_series(
            db_session=db_session, bucket=bucket, start=start, end=end, segments=settings.alert_segments
        ).since_first_data()
        plans.append((ss, n_scan))
    total = sum(1 for ss, _ in plans for key in ss.counts if key[0] != ALL_TOPICS)
    firings: list[Firing] = []
    scanned = checked = 0
    for ss, n_scan in plans:
        for key, values in ss.counts.items():
            if key[0] == ALL_TOPICS:
                continue
            scanned += 1
            checked += min(n_scan, ss.n)
            firings.extend(scan_series(key, values, ss, settings, scan=n_scan))
            if progress is not None:
                progress(scanned, total)
    return Scan(at, firings, scanned, checked, ends, max_row_id, time.perf_counter() - t0)


def _lock(db_session: Session, now: datetime) -> AlertDetectorState:
    """Take the detector's row lock (PostgreSQL: row lock; SQLite: the write lock) for this transaction."""
    if db_session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db_session.execute(
        insert(AlertDetectorState).values(name=DETECTOR, last_run_at=now).on_conflict_do_nothing()
    )
    state = db_session.scalars(
        select(AlertDetectorState)
        .where(AlertDetectorState.name == DETECTOR)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return state


def record(
    *,
    db_session: Session,
    settings: Settings,
    scan: Scan,
    topic_labels: Mapping[str, str] | None = None,
) -> DetectResponse:
    """The write phase of a run, kept short: under the detector's lock, merge the firings into alerts (each
    open alert row-locked and re-read first), explain them, write their events, move the cursor on."""
    t0 = time.perf_counter()
    now = utcnow()
    state = _lock(db_session, now)
    labels = dict(topic_labels or {})
    touched = merge_firings(db_session=db_session, settings=settings, firings=scan.firings, now=now)
    created = updated = 0
    for t in touched:
        alert = t.alert
        if not t.created and _fingerprint(alert) == t.before:
            continue  # a rescan of buckets already accounted for
        alert.explanation = explain_alert(
            db_session=db_session, settings=settings, alert=alert, topic_label=labels.get(alert.topic_id)
        )
        if t.created:
            created += 1
            emit(db_session, "alert.created", alert, labels.get(alert.topic_id))
        else:
            updated += 1
            alert.revision += 1
            alert.updated_at = now
            emit(db_session, "alert.updated", alert, labels.get(alert.topic_id))
    db_session.flush()
    out = DetectResponse(
        at=scan.at,
        series_scanned=scan.series_scanned,
        buckets_checked=scan.buckets_checked,
        firings=len(scan.firings),
        alerts_created=created,
        alerts_updated=updated,
        alert_ids=[t.alert.id for t in touched if t.created or _fingerprint(t.alert) != t.before],
        seconds=round(scan.seconds + time.perf_counter() - t0, 3),
    )
    cursor = ScanCursor.load(state.cursor)
    if cursor is None:  # a first run: what is stored now is not late
        cursor = ScanCursor({}, (scan.max_row_id, scan.max_row_id))
    state.cursor = cursor.advance(scan.ends, scan.max_row_id).dump()
    state.last_run_at = now
    state.last_summary = out.model_dump(mode="json")
    db_session.flush()
    return out


def detect(
    *,
    db_session: Session,
    settings: Settings,
    at: datetime | None = None,
    lookback_s: int | None = None,
    buckets: Sequence[str] | None = None,
    topic_labels: Mapping[str, str] | None = None,
) -> DetectResponse:
    """A whole run in one session: :func:`scan` then :func:`record` (``anomaly.flows.run_detection`` runs
    them in two transactions). Checks the newest buckets since the last run ended (see :func:`scan`)."""
    found = scan(db_session=db_session, settings=settings, at=at, lookback_s=lookback_s, buckets=buckets)
    return record(db_session=db_session, settings=settings, scan=found, topic_labels=topic_labels)


# -- lifecycle and reads ---------------------------------------------------------------------------------
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
    db_session: Session, alert_id: str, *, allowed_from: tuple[str, ...], to: str, note: str | None
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
        out[link.alert_id].append(
            RepresentativeComment(
                id=c.id,
                text=c.text,
                created_at=c.created_at,
                region=c.region,
                touchpoint=c.touchpoint,
                source=c.source,
                nps=c.nps,
                similarity=link.similarity,
            )
        )
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
        kind=alert.kind,  # type: ignore[arg-type]
        direction=alert.direction,  # type: ignore[arg-type]
        status=alert.status,  # type: ignore[arg-type]
        overdue=is_overdue(alert, settings, now),
        severity=alert.severity,  # type: ignore[arg-type]
        bucket=alert.bucket,  # type: ignore[arg-type]
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
    cond = []
    if query.status:
        options = []
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


# -- series: posted by another service, and stored topic series for charts -------------------------------
def _cp_out(cp: ChangePoint) -> ChangePointOut:
    return ChangePointOut(
        index=cp.index,
        timestamp=datetime.fromtimestamp(cp.timestamp, UTC),
        before_mean=round(cp.before_mean, 4),
        after_mean=round(cp.after_mean, 4),
        kind=cp.kind,
    )


def _spike_out(sp: Spike) -> SpikeOut:
    return SpikeOut(
        index=sp.index,
        timestamp=datetime.fromtimestamp(sp.timestamp, UTC),
        observed=sp.observed,
        expected=round(sp.expected, 4),
        score=round(sp.score, 4),
        p_value=sp.p_value,
        kind=sp.kind,
    )


def _expected(det: SeasonalSpikeDetector, n: int) -> list[float | None]:
    assert det.scores_ is not None
    out: list[float | None] = [None] * n
    for i, v in enumerate(det.scores_.expected):
        idx = i + det.start_
        if idx >= det.min_history and math.isfinite(float(v)):
            out[idx] = round(float(v), 4)
    return out


@dataclass
class _Analysis:
    spikes: tuple[Spike, ...]
    change_points: tuple[ChangePoint, ...]
    expected: list[float | None] = field(default_factory=list)


def _analyse(series: Series, spike_det: SeasonalSpikeDetector, cp_det: PeltChangePointDetector) -> _Analysis:
    spikes = spike_det.fit(series).predict()
    cps = cp_det.fit(series).predict()
    return _Analysis(spikes, cps, _expected(spike_det, len(series)))


def detect_posted_series(*, request: SeriesDetectRequest, settings: Settings) -> SeriesDetectResponse:
    """Change points, spikes and episodes of a series posted by another service (pure, no database)."""
    n = len(request.values)
    if n < settings.alert_min_series_points:
        raise InvalidInput(
            f"a series needs at least {settings.alert_min_series_points} points, got {n}",
            detail=[{"field": "values", "message": f"at least {settings.alert_min_series_points} points"}],
        )
    season = request.season_seconds
    if season is None:
        season = 86400 if request.bucket_seconds < 86400 else 7 * 86400
    season_or_none = season or None
    series = Series.from_arrays(
        np.asarray(request.epoch_seconds(), dtype=np.int64),
        np.asarray(request.values),
        request.bucket_seconds,
    )
    spike_det = SeasonalSpikeDetector(
        season_seconds=season_or_none, p_threshold=request.p_threshold, min_count=request.min_count
    )
    result = _analyse(series, spike_det, PeltChangePointDetector(season_seconds=season_or_none))
    bs = request.bucket_seconds
    return SeriesDetectResponse(
        points=len(series),
        bucket_seconds=bs,
        season_seconds=season_or_none,
        expected=result.expected,
        change_points=[_cp_out(c) for c in result.change_points],
        spikes=[_spike_out(s) for s in result.spikes],
        episodes=[
            EpisodeOut(
                start=datetime.fromtimestamp(e.start_timestamp, UTC),
                end=datetime.fromtimestamp(e.end_timestamp, UTC),
                peak=datetime.fromtimestamp(int(series.timestamps[e.peak]), UTC),
                peak_score=round(e.peak_score, 4),
                kind=e.kind,
                buckets=e.length,
            )
            for e in merge_episodes(result.spikes)
        ],
    )


def topic_series_chart(
    *,
    db_session: Session,
    settings: Settings,
    topic_id: str,
    query: SeriesQuery,
    known_topics: Iterable[str] = (),
) -> TopicSeriesResponse:
    """One topic's (or topic x segment's) counts, shares, baseline, change points and spikes in a range.

    The detectors see ``history`` buckets before ``since`` too, so the baseline is the one alerts used.
    """
    bucket = query.bucket
    bs = BUCKET_SECONDS[bucket]
    until = (
        floor_bucket(query.until, bucket)
        if query.until
        else floor_bucket(utcnow(), bucket) + timedelta(seconds=bs)
    )
    history = settings.alert_history_hours if bucket == "hour" else settings.alert_history_days
    since = floor_bucket(query.since, bucket) if query.since else until - timedelta(seconds=bs * history)
    n_range = int((until - since).total_seconds()) // bs
    if n_range <= 0:
        raise InvalidInput(
            "the range holds no whole bucket", detail=[{"field": "since", "message": "too late"}]
        )
    if n_range > MAX_CHART_POINTS:
        raise InvalidInput(
            f"the range holds {n_range} {bucket} buckets; at most {MAX_CHART_POINTS}",
            detail=[{"field": "since", "message": f"at most {MAX_CHART_POINTS} buckets"}],
        )
    segment = query.segment or ALL_SEGMENT
    value = query.value or ALL_SEGMENT
    start = since - timedelta(seconds=bs * history)
    ss = load_series(
        db_session=db_session,
        bucket=bucket,
        start=start,
        end=until,
        segments=[query.segment] if query.segment else [],
        topic_ids=[topic_id, ALL_TOPICS],
        segment_value=query.value,
    )
    counts = ss.counts.get((topic_id, segment, value))
    if counts is None:
        if topic_id not in set(known_topics):
            raise NotFound(
                f"topic {topic_id!r} not found", detail=[{"field": "id", "message": "not a taxonomy topic"}]
            )
        counts = np.zeros(ss.n)
    totals = ss.counts.get((ALL_TOPICS, segment, value), np.zeros(ss.n))
    offset = ss.n - ss.since_first_data().n  # detectors see the series from the first comment on
    first = ss.n - n_range
    spikes: list[SpikeOut] = []
    change_points: list[ChangePointOut] = []
    expected: list[float | None] = [None] * ss.n
    if offset < ss.n:
        series = Series(ss.timestamps()[offset:], counts[offset:], bs)
        result = _analyse(series, spike_detector(settings, bucket), changepoint_detector(bucket))
        expected[offset:] = result.expected
        spikes = [
            _spike_out(replace(sp, index=sp.index + offset - first))
            for sp in result.spikes
            if sp.index + offset >= first
        ]
        change_points = [
            _cp_out(replace(cp, index=cp.index + offset - first))
            for cp in result.change_points
            if cp.index + offset >= first
        ]
    points = [
        SeriesPoint(
            start=ss.time_at(i),
            count=int(counts[i]),
            total=int(totals[i]),
            share=round(float(counts[i] / totals[i]), 4) if totals[i] else None,
            expected=expected[i],
        )
        for i in range(first, ss.n)
    ]
    alert_ids = db_session.scalars(
        select(Alert.id)
        .where(Alert.topic_id == topic_id, Alert.window_end > since, Alert.window_start < until)
        .order_by(Alert.window_start)
    )
    return TopicSeriesResponse(
        topic_id=topic_id,
        bucket=bucket,
        segment=segment,
        segment_value=value,
        since=since,
        until=until,
        points=points,
        change_points=change_points,
        spikes=spikes,
        alerts=list(alert_ids),
    )
