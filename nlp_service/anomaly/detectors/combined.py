"""``detect_series``: the one pure detection path (change points + spikes + episodes + baseline) for one
series; ``POST /v1/detect/series`` and the chart call it. ``detect_many`` gives the same for many series,
vectorised across series on one grid (the worker's detection run and the benchmarks)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
    spike_det.fit(series, latest_only=latest_only)
    cp_det.fit(series)
    return _result(spike_det, cp_det, episode_gap)


BATCH = 128  # series scored at once by detect_many: bounds its temporaries (~5 MB a year of daily buckets)


@dataclass(frozen=True)
class Fitted:
    """One series' result with its fitted detectors (e.g. for ``PeltChangePointDetector.significance``)."""

    result: DetectionResult
    spike_detector: SeasonalSpikeDetector
    changepoint_detector: PeltChangePointDetector


def detect_many(
    series: Sequence[Series],
    *,
    spike_detector: SeasonalSpikeDetector | None = None,
    changepoint_detector: PeltChangePointDetector | None = None,
    episode_gap: int = 1,
    latest_only: bool = False,
    batch: int = BATCH,
) -> Iterator[tuple[int, Fitted]]:
    """``detect_series`` of every series (same results), yielded as ``(index in series, Fitted)``: series on
    one grid (length, bucket size, first timestamp) are scored ``batch`` at a time, vectorised across them;
    grids in order of first appearance. The detectors passed are templates, copied per series."""
    spike_det = spike_detector if spike_detector is not None else SeasonalSpikeDetector()
    cp_det = changepoint_detector if changepoint_detector is not None else PeltChangePointDetector()
    grids: dict[tuple[int, int, int], list[int]] = {}
    for i, s in enumerate(series):
        key = (len(s), s.bucket_seconds, int(s.timestamps[0]) if len(s) else 0)
        grids.setdefault(key, []).append(i)
    for members in grids.values():
        for at in range(0, len(members), max(1, batch)):
            chunk = members[at : at + max(1, batch)]
            group = [series[i] for i in chunk]
            spikes = spike_det.fit_many(group, latest_only=latest_only)
            changes = cp_det.fit_many(group)
            for i, sd, cd in zip(chunk, spikes, changes, strict=True):
                yield i, Fitted(_result(sd, cd, episode_gap), sd, cd)


def _result(
    spike_det: SeasonalSpikeDetector, cp_det: PeltChangePointDetector, episode_gap: int
) -> DetectionResult:
    spikes = spike_det.predict()
    episodes = tuple(merge_episodes(spikes, max_gap=episode_gap))
    return DetectionResult(cp_det.predict(), spikes, episodes, _baseline(spike_det, len(spike_det._fitted())))


def _baseline(det: SeasonalSpikeDetector, n: int) -> FloatArray:
    out = np.full(n, np.nan)
    if det.scores_ is not None:
        expected = np.asarray(det.scores_.expected, dtype=np.float64)
        out[det.start_ : det.start_ + expected.size] = expected
    out[: det.min_history] = np.nan
    return out
