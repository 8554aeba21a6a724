"""``detect_series``: the one pure detection path (change points + spikes + episodes + baseline) for one
series; ``POST /v1/detect/series``, the chart, the worker's detection run and the benchmarks all call it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nlp_service.anomaly.detectors.base import ChangePoint, FloatArray, Series, Spike
from nlp_service.anomaly.detectors.changepoint import PeltChangePointDetector
from nlp_service.anomaly.detectors.episodes import Episode, merge_episodes
from nlp_service.anomaly.detectors.seasonal import SeasonalSpikeDetector


@dataclass(frozen=True)
class DetectionResult:
    """Everything found in one series; ``baseline`` is the spike detector's history-only expectation per
    bucket (NaN where it has no baseline yet: before ``min_history`` or unscored)."""

    change_points: tuple[ChangePoint, ...]
    spikes: tuple[Spike, ...]
    episodes: tuple[Episode, ...]
    baseline: FloatArray = field(compare=False, repr=False)


def detect_series(
    series: Series,
    *,
    spike_detector: SeasonalSpikeDetector | None = None,
    changepoint_detector: PeltChangePointDetector | None = None,
    episode_gap: int = 1,
    latest_only: bool = False,
) -> DetectionResult:
    """Run both detectors on one series (default: both with their default, weekly-seasonal settings).

    Spikes are scored for every bucket as if streaming (history-only baselines), or just the newest bucket
    with ``latest_only``; spikes of one kind at most ``episode_gap`` buckets apart make one episode. The
    detectors passed are fitted in place (their fitted state stays readable).
    """
    spike_det = spike_detector if spike_detector is not None else SeasonalSpikeDetector()
    cp_det = changepoint_detector if changepoint_detector is not None else PeltChangePointDetector()
    spikes = spike_det.fit(series, latest_only=latest_only).predict()
    change_points = cp_det.fit(series).predict()
    episodes = tuple(merge_episodes(spikes, max_gap=episode_gap))
    return DetectionResult(change_points, spikes, episodes, _baseline(spike_det, len(series)))


def _baseline(det: SeasonalSpikeDetector, n: int) -> FloatArray:
    out = np.full(n, np.nan)
    if det.scores_ is not None:
        expected = np.asarray(det.scores_.expected, dtype=np.float64)
        out[det.start_ : det.start_ + expected.size] = expected
    out[: det.min_history] = np.nan
    return out
