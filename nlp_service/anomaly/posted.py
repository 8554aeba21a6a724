"""``POST /v1/detect/series``: change points, spikes, episodes and the baseline of a series posted by another
service (pure, no database), and the mapping of detector results to response models (also the chart's)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from nlp_service.anomaly.detectors import (
    ChangePoint,
    DetectionResult,
    PeltChangePointDetector,
    SeasonalSpikeDetector,
    Series,
    Spike,
    detect_series,
)
from nlp_service.anomaly.schemas import (
    ChangePointOut,
    EpisodeOut,
    SeriesDetectRequest,
    SeriesDetectResponse,
    SpikeOut,
)
from nlp_service.config import Settings
from nlp_service.errors import InvalidInput


def change_point_out(cp: ChangePoint) -> ChangePointOut:
    return ChangePointOut(
        index=cp.index,
        timestamp=datetime.fromtimestamp(cp.timestamp, UTC),
        before_mean=round(cp.before_mean, 4),
        after_mean=round(cp.after_mean, 4),
        kind=cp.kind,
    )


def spike_out(sp: Spike) -> SpikeOut:
    return SpikeOut(
        index=sp.index,
        timestamp=datetime.fromtimestamp(sp.timestamp, UTC),
        observed=sp.observed,
        expected=round(sp.expected, 4),
        score=round(sp.score, 4),
        p_value=sp.p_value,
        kind=sp.kind,
        buckets=sp.width,
    )


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
    result = detect_series(
        series,
        spike_detector=spike_det,
        changepoint_detector=PeltChangePointDetector(season_seconds=season_or_none),
    )
    bs = request.bucket_seconds
    return SeriesDetectResponse(
        points=len(series),
        bucket_seconds=bs,
        season_seconds=season_or_none,
        expected=baseline_out(result),
        change_points=[change_point_out(c) for c in result.change_points],
        spikes=[spike_out(s) for s in result.spikes],
        episodes=[
            EpisodeOut(
                start=datetime.fromtimestamp(e.start_timestamp, UTC),
                end=datetime.fromtimestamp(e.end_timestamp, UTC),
                peak=datetime.fromtimestamp(int(series.timestamps[e.peak]), UTC),
                peak_score=round(e.peak_score, 4),
                kind=e.kind,
                buckets=e.length,
            )
            for e in result.episodes
        ],
    )


def baseline_out(result: DetectionResult) -> list[float | None]:
    """The baseline per bucket as the API shows it: rounded, ``None`` where there is none."""
    return [round(float(v), 4) if math.isfinite(v) else None for v in result.baseline]
