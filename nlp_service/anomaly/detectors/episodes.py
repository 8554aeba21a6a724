"""Merge anomalous buckets into episodes so callers raise one alert per episode."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nlp_service.anomaly.detectors.base import FloatArray, IntArray, Spike, SpikeKind


@dataclass(frozen=True)
class Episode:
    """Consecutive anomalous buckets of one kind: ``start``..``end`` inclusive, strongest at ``peak``."""

    start: int
    end: int
    peak: int
    peak_score: float
    kind: SpikeKind
    start_timestamp: int
    end_timestamp: int

    @property
    def length(self) -> int:
        """Number of buckets spanned."""
        return self.end - self.start + 1


def merge_episodes(spikes: Iterable[Spike], *, max_gap: int = 1) -> list[Episode]:
    """Group spikes of the same kind whose indices differ by at most ``max_gap`` (1 = adjacent).

    Episodes are returned sorted by start; a spike and a drop never share an episode.
    """
    if max_gap < 1:
        raise ValueError("max_gap must be >= 1")
    out: list[Episode] = []
    for kind in ("spike", "drop"):
        group: list[Spike] = []
        for sp in sorted((s for s in spikes if s.kind == kind), key=lambda s: s.index):
            if group and sp.index - group[-1].index > max_gap:
                out.append(_episode(group))
                group = []
            group.append(sp)
        if group:
            out.append(_episode(group))
    return sorted(out, key=lambda e: (e.start, e.kind))


def _episode(group: list[Spike]) -> Episode:
    peak = max(group, key=lambda s: s.score)
    return Episode(
        start=group[0].index,
        end=group[-1].index,
        peak=peak.index,
        peak_score=peak.score,
        kind=group[0].kind,
        start_timestamp=group[0].timestamp,
        end_timestamp=group[-1].timestamp,
    )


def escalations(scores: FloatArray, *, cooldown: int, factor: float = 1.0) -> FloatArray:
    """Keep a bucket's score only if it beats ``factor`` x every score in the previous ``cooldown`` buckets.

    An online, threshold-free form of "one alert per episode": within a burst only buckets that are
    more significant than anything recent re-alert. Uses past buckets only.
    """
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64))
    if cooldown <= 0 or s.size == 0:
        return s
    padded = np.concatenate([np.zeros(cooldown), s])
    prev_max = sliding_window_view(padded[:-1], cooldown).max(axis=1)
    return np.where(s > factor * prev_max, s, 0.0)


def refractory_alerts(scores: FloatArray, threshold: float, *, refractory: int) -> IntArray:
    """Indices of alerts: buckets with ``score >= threshold``, except within ``refractory`` buckets after
    the previous alert (a snooze: one alert per burst rather than one per bucket of it).

    Causal (each decision uses past alerts only); ``refractory=0`` keeps every crossing. Indices are
    sorted and unique.
    """
    if refractory < 0:
        raise ValueError("refractory must be >= 0")
    idx = np.flatnonzero(np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf) >= threshold)
    if refractory == 0 or idx.size < 2:
        return idx.astype(np.int64)
    kept = []
    j = 0
    while j < idx.size:
        kept.append(int(idx[j]))
        j = int(np.searchsorted(idx, idx[j] + refractory + 1))
    return np.array(kept, dtype=np.int64)
