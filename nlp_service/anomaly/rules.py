"""Firing rules (pure, no database): the detectors configured per bucket size, and which anomalous buckets
of one series are *firings* (spikes/drops in the buckets to check, level shifts still recent and confirmed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from nlp_service.anomaly import joint, weekly
from nlp_service.anomaly.detectors import (
    ChangePoint,
    DetectionResult,
    Fitted,
    PeltChangePointDetector,
    SeasonalSpikeDetector,
    Series,
    Spike,
    detect_many,
)
from nlp_service.anomaly.detectors.windows import rolling_sum
from nlp_service.anomaly.sensitivity import PRESETS, Thresholds, thresholds
from nlp_service.anomaly.series import SeriesKey, SeriesSet
from nlp_service.anomaly.tables import AlertKind, Bucket, Direction
from nlp_service.config import Settings
from nlp_service.timestamps import BUCKET_SECONDS
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS

WEEK_SECONDS = 7 * 86400
SEASON_SECONDS = {"hour": 86400, "day": WEEK_SECONDS}
CP_MIN_SIZE = 5  # buckets on each side of a level shift
SHIFT_BASELINE_BUCKETS = 8 * CP_MIN_SIZE  # the old level of a shift's test: at most this many buckets before
# The effective number of counts behind an hourly expectation (a trimmed mean of six earlier days' same hour,
# level-corrected by a median over a day): measured on null incident scenarios against the generator's means,
# hourly expectations under two comments an hour have a relative squared error of about 0.4 / mu, that of a
# mean of 2.5 counts (evaluation/INCIDENT_ROUNDS.md, round 12)
HOUR_BASELINE_SAMPLES = 2.5


def spike_detector(settings: Settings, bucket: str, th: Thresholds | None = None) -> SeasonalSpikeDetector:
    """The spike/drop detector configured for a bucket size (daily seasonality for hours, weekly for days)
    and a sensitivity's thresholds (default: the configured sensitivity's)."""
    th = th or thresholds(settings)
    hourly = bucket == "hour"
    return SeasonalSpikeDetector(
        season_seconds=SEASON_SECONDS[bucket],
        level_window=24 if hourly else 14,
        dispersion_window=168 if hourly else 56,
        p_threshold=th.p_threshold,
        min_count=float(settings.alert_min_volume),
        min_excess=th.min_excess,
        min_ratio=th.min_ratio,
        min_history=settings.alert_min_history_hours if hourly else settings.alert_min_history_days,
        seasonal_min_trim=0 if hourly else 1,  # days: a surge among 3-4 earlier weeks is not averaged in
        windows=tuple(settings.alert_hour_windows) if hourly else (),
        window_season_seconds=WEEK_SECONDS,  # a window of hours: against the same hours of earlier weeks
        window_joint_p=joint.MEMBER_P,
        baseline_samples=HOUR_BASELINE_SAMPLES if hourly else 0.0,
    )


def changepoint_detector(bucket: str, th: Thresholds | None = None) -> PeltChangePointDetector:
    relative = th.min_relative_change if th is not None else PRESETS["medium"].min_relative_change
    return PeltChangePointDetector(
        season_seconds=SEASON_SECONDS[bucket], min_size=CP_MIN_SIZE, min_relative_change=relative
    )


@dataclass(frozen=True)
class Firing:
    """One anomalous bucket (or, for level shifts, the buckets establishing the new level) of one series."""

    bucket: Bucket
    topic_id: str
    segment: str
    segment_value: str
    kind: AlertKind
    direction: Direction
    start: datetime
    end: datetime  # exclusive
    observed: float
    expected: float
    score: float
    p_value: float | None
    joint: joint.Joint | None = None  # fired with other topics of its segment (the joint test)
    buckets: int = 1  # buckets summed in observed/expected (a spike of several: ``detectors.windows``)

    @property
    def is_topic_level(self) -> bool:
        return self.segment == ALL_SEGMENT

    @property
    def series_label(self) -> str:
        return "all" if self.is_topic_level else f"{self.segment}={self.segment_value}"

    def gap(self, settings: Settings) -> timedelta:
        return timedelta(seconds=BUCKET_SECONDS[self.bucket] * settings.alert_episode_gap_buckets)


def _spike_firing(key: SeriesKey, ss: SeriesSet, sp: Spike) -> Firing:
    start = ss.time_at(sp.index - sp.width + 1)
    return Firing(
        bucket=ss.bucket,
        topic_id=key[0],
        segment=key[1],
        segment_value=key[2],
        kind=sp.kind,
        direction="up" if sp.kind == "spike" else "down",
        start=start,
        end=start + timedelta(seconds=sp.width * ss.bucket_seconds),
        observed=sp.observed,
        expected=sp.expected,
        score=sp.score,
        p_value=sp.p_value,
        buckets=sp.width,
    )


def joint_firings(
    found: Sequence[joint.Candidate], ss: SeriesSet, settings: Settings, th: Thresholds
) -> list[Firing]:
    """Spike firings of the series that pass the joint test of their segment and bucket (``anomaly.joint``;
    ``found``: the candidates :func:`scan_many` collected), with the joint p-value."""
    factor = spike_detector(settings, ss.bucket, th).window_p_factor
    return [
        replace(
            _spike_firing(
                c.key,
                ss,
                Spike(c.index, 0, c.observed, c.expected, c.score, why.p_value, "spike", width=c.width),
            ),
            joint=why,
        )
        for c, why in joint.joint_members(
            found,
            ss,
            th,
            window_p_factor=factor,
            lag=settings.alert_joint_window_lag if ss.bucket == "hour" else 0,
        )
    ]


def joint_tests(settings: Settings, bucket: str) -> tuple[bool, bool]:
    """Whether series of ``bucket`` take part in joint tests (``anomaly.joint``) with their single buckets
    (``alert_joint_buckets``) and with their windows of hours (``alert_joint_windows``)."""
    windows = bucket == "hour" and settings.alert_joint_windows and bool(settings.alert_hour_windows)
    return bucket in settings.alert_joint_buckets, windows


def profile_candidates(
    ss: SeriesSet, settings: Settings, *, scan: int, th: Thresholds
) -> list[joint.Candidate]:
    """The windows of hours that take part in the joint test against their segment value's profile
    (``anomaly.joint``, ``detectors.profile``): of ``alert_joint_profile_windows`` hours, for hourly series
    when windows are tested jointly. A bucket without a comment of any topic is a collection gap, as in
    :func:`scan_many`."""
    if not (settings.alert_joint_profile_windows and joint_tests(settings, ss.bucket)[1]):
        return []
    counts = dict(_gaps_missing(list(ss.counts.items()), ss))
    return joint.profile_candidates(
        SeriesSet(ss.bucket, ss.start, ss.n, counts),
        scan,
        settings.alert_joint_profile_windows,
        th,
        min_count=float(settings.alert_min_volume),
    )


def _shift_firing(key: SeriesKey, ss: SeriesSet, cp: ChangePoint, score: float, p_value: float) -> Firing:
    start = ss.time_at(cp.index)
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
        score=score,
        p_value=p_value,
    )


def scan_series(
    key: SeriesKey,
    values: np.ndarray,
    ss: SeriesSet,
    settings: Settings,
    *,
    scan: int,
    th: Thresholds | None = None,
) -> list[Firing]:
    """Firings of one series in its newest ``scan`` buckets (level shifts: change points still recent), at a
    sensitivity's thresholds (default: the configured sensitivity's). Buckets where ``ss`` holds no comment
    at all (``_all`` is 0) are a collection gap: missing to the detectors, so they fire neither then nor
    after (``evaluation/anomaly_cx.py``, families ``gap`` and ``gap_live``)."""
    return scan_many([(key, values)], ss, settings, scan=scan, th=th)


def scan_many(
    items: Sequence[tuple[SeriesKey, np.ndarray]],
    ss: SeriesSet,
    settings: Settings,
    *,
    scan: int,
    th: Thresholds | None = None,
    joint_candidates: list[joint.Candidate] | None = None,
) -> list[Firing]:
    """:func:`scan_series` of each ``(key, values)`` of ``ss``, in order, the detectors run on all of them at
    once (``detectors.detect_many``); pass a bounded number (``detectors.BATCH`` or so) to bound memory.
    With ``joint_candidates``, the segment series' buckets that may take part in a joint test are appended
    to it (``anomaly.joint``; :func:`joint_firings` tests them once every series is scanned)."""
    items = _gaps_missing(items, ss)
    th = th or thresholds(settings)
    spike_det = spike_detector(settings, ss.bucket, th)
    widest = max(spike_det.windows, default=1)
    kept = [(k, v) for k, v in items if v.size and _peak(v, widest) >= settings.alert_min_volume]
    # (the volume guard can never pass otherwise: spikes need the count, drops the expectation)
    ts = ss.timestamps()
    series = [Series(ts, v.astype(np.float64), ss.bucket_seconds) for _, v in kept]
    cp_det = changepoint_detector(ss.bucket, th)
    found = detect_many(series, spike_detector=spike_det, changepoint_detector=cp_det)
    out: list[list[Firing]] = [[] for _ in kept]
    single, windows = joint_tests(settings, ss.bucket)
    for i, fitted in found:
        key, values = kept[i]
        week = _week(values, fitted, ss, settings, th)
        out[i] = _firings(
            key, values, ss, settings, scan, th, week, fitted.result, fitted.changepoint_detector
        )
        scores = fitted.spike_detector.scores_
        if joint_candidates is not None and scores is not None:
            joint_candidates.extend(
                c
                for c in joint.candidates(
                    key, scores, fitted.spike_detector.start_, values, scan, single=single, windows=windows
                )
                if week is None or not week.explains(c.index, "spike", c.width)
            )
    return [f for firings in out for f in firings]


def _gaps_missing(
    items: Sequence[tuple[SeriesKey, np.ndarray]], ss: SeriesSet
) -> Sequence[tuple[SeriesKey, np.ndarray]]:
    """``items`` with the buckets where ``ss`` holds no comment of any topic (``_all`` is 0) missing (NaN):
    a bucket without a single comment is a collection gap, missing data, not zeros."""
    total = ss.counts.get((ALL_TOPICS, ALL_SEGMENT, ALL_SEGMENT))
    if total is None or total.all():
        return items
    return [(k, np.where(total > 0, v, np.nan) if v.size == total.size else v) for k, v in items]


def _peak(values: np.ndarray, width: int) -> float:
    """The largest sum of ``width`` consecutive buckets (missing ones as 0)."""
    v = np.nan_to_num(values.astype(np.float64))
    return float(np.nanmax(rolling_sum(v, min(width, v.size))))


def _firings(
    key: SeriesKey,
    values: np.ndarray,
    ss: SeriesSet,
    settings: Settings,
    scan: int,
    th: Thresholds,
    week: _Week | None,
    found: DetectionResult,
    cp_det: PeltChangePointDetector,
) -> list[Firing]:
    n = values.size
    spikes = found.spikes
    out = [
        _spike_firing(key, ss, sp)
        for sp in spikes
        if sp.index >= n - scan and not (week is not None and week.explains(sp.index, sp.kind, sp.width))
    ]
    for j, cp in enumerate(found.change_points):
        if cp.index >= n - scan - CP_MIN_SIZE and _confirmed_shift(values, cp, spikes, settings, cp_det):
            if week is not None and _weekly_shift(cp_det, found.change_points, j, week.period):
                continue  # the weekend step (or another weekly pattern), not a change
            # as strict as a spike: the new level's p-value against the old must pass the same threshold
            score, p_value = cp_det.significance(cp, after=CP_MIN_SIZE, before=SHIFT_BASELINE_BUCKETS)
            if p_value <= th.p_threshold:
                out.append(_shift_firing(key, ss, cp, score, p_value))
    return out


def _week_to_check(ss: SeriesSet, settings: Settings) -> int:
    """Buckets in a week when the weekly-pattern check applies (the detectors of ``ss``'s bucket size model a
    season shorter than a week and ``alert_weekly_check`` is on), else 0."""
    week = WEEK_SECONDS // ss.bucket_seconds
    return week if settings.alert_weekly_check and SEASON_SECONDS[ss.bucket] < WEEK_SECONDS else 0


@dataclass(frozen=True)
class _Week:
    """The weekly-pattern check of one series (``anomaly.weekly``): its counts, the spike detector's baseline
    per bucket and its overdispersion from bucket ``start`` on, the buckets in a week and the thresholds."""

    values: np.ndarray
    baseline: np.ndarray
    alpha: np.ndarray
    start: int
    period: int
    th: Thresholds

    def explains(self, index: int, kind: str, width: int) -> bool:
        """Whether the week explains a drop or a one-bucket spike at ``index``."""
        th = self.th
        if kind == "drop":
            return weekly.drop_explained(
                self.values, self.baseline, index, self.period,
                min_excess=th.min_excess, min_ratio=th.min_ratio,
            )  # fmt: skip
        if width != 1 or index < self.start:
            return False
        return weekly.spike_explained(
            self.values, self.baseline, index, self.period, alpha=float(self.alpha[index - self.start]),
            min_excess=th.min_excess, min_ratio=th.min_ratio, p_threshold=th.p_threshold,
        )  # fmt: skip


def _week(
    values: np.ndarray, fitted: Fitted, ss: SeriesSet, settings: Settings, th: Thresholds
) -> _Week | None:
    """The weekly-pattern check of a fitted series, or None where it does not apply (``_week_to_check``)."""
    period = _week_to_check(ss, settings)
    det = fitted.spike_detector
    if not period or det.scores_ is None:
        return None
    x = np.asarray(values, dtype=np.float64)
    return _Week(x, fitted.result.baseline, det.scores_.alpha, det.start_, period, th)


def _weekly_shift(det: PeltChangePointDetector, cps: Sequence[ChangePoint], j: int, week: int) -> bool:
    """Whether the week explains change point ``cps[j]``, compared over its own segments (at most
    ``weekly.SHIFT_WIDTH`` buckets each side) on the levels the detector measured."""
    index = cps[j].index
    prev = cps[j - 1].index if j > 0 else 0
    nxt = cps[j + 1].index if j + 1 < len(cps) else det.levels_.size
    span = (min(weekly.SHIFT_WIDTH, index - prev), min(weekly.SHIFT_WIDTH, nxt - index))
    return weekly.shift_explained(
        det.levels_,
        index,
        span,
        week,
        min_abs_change=det.min_abs_change,
        min_relative_change=det.min_relative_change,
    )


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
    old, new = values[max(0, cp.index - w) : cp.index], values[cp.index : cp.index + w]
    if np.isnan(old).all() or np.isnan(new).all():
        return False  # one side is all collection gap
    before, after = float(np.nanmedian(old)), float(np.nanmedian(new))
    change = abs(after - before)
    if change < det.min_abs_change or change < det.min_relative_change * max(before, after):
        return False
    if (after > before) != (cp.kind == "level_up") or max(before, after) < settings.alert_min_volume:
        return False
    same = "spike" if cp.kind == "level_up" else "drop"
    return not any(sp.kind == same and cp.index - w <= sp.index < cp.index + w for sp in spikes)
