"""``detect_series``: change points + streaming spikes + episodes for one series in one call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

from nlp_service.anomaly.detectors.base import ChangePoint, Series, Spike
from nlp_service.anomaly.detectors.changepoint import PeltChangePointDetector
from nlp_service.anomaly.detectors.episodes import Episode, merge_episodes
from nlp_service.anomaly.detectors.seasonal import SeasonalSpikeDetector


@dataclass(frozen=True)
class DetectionResult:
    """Everything found in one series (the payload of ``POST /v1/detect/series``)."""

    change_points: tuple[ChangePoint, ...]
    spikes: tuple[Spike, ...]
    episodes: tuple[Episode, ...]


def detect_series(
    timestamps: npt.ArrayLike,
    values: npt.ArrayLike,
    bucket_seconds: int,
    *,
    season_seconds: int | None = 7 * 86400,
    spike_params: Mapping[str, Any] | None = None,
    changepoint_params: Mapping[str, Any] | None = None,
    episode_gap: int = 1,
    latest_only: bool = False,
) -> DetectionResult:
    """Run both detectors on one series.

    ``timestamps`` are datetime64 or epoch seconds; missing buckets count as zero. Spikes are scored
    for every bucket as if streaming (history-only baselines), or just the newest bucket with
    ``latest_only``. ``spike_params``/``changepoint_params`` are keyword arguments of
    ``SeasonalSpikeDetector``/``PeltChangePointDetector``; ``season_seconds`` applies to both.
    """
    series = Series.from_arrays(timestamps, values, bucket_seconds)
    spike_det = SeasonalSpikeDetector(season_seconds=season_seconds, **dict(spike_params or {}))
    spikes = spike_det.fit(series, latest_only=latest_only).predict()
    cp_det = PeltChangePointDetector(season_seconds=season_seconds, **dict(changepoint_params or {}))
    change_points = cp_det.fit(series).predict()
    return DetectionResult(change_points, spikes, tuple(merge_episodes(spikes, max_gap=episode_gap)))
