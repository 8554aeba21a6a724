"""Offline level-shift detection with ruptures (PELT on a variance-stabilised, deseasonalised series).

Pipeline for a whole series (offline, so the full series may be used):

1. deseasonalise: divide by per-slot factors (median of the slot / overall median) when the series
   covers at least two seasonal periods;
2. stabilise the variance: Anscombe ``2 sqrt(y + 3/8)`` (unit variance for Poisson counts);
3. estimate the noise level robustly: ``sigma = 1.4826 MAD(diff(z)) / sqrt(2)`` (differences cancel
   the level, so shifts and trends barely bias it), floored at ``min_sigma``;
4. damp short spikes: clip ``z`` to a centred running median +/- 3 sigma over ``2 min_size + 1``
   buckets (a running median keeps step edges but removes bursts shorter than ``min_size``);
5. pre-screen (speed): skip PELT when no interval on a grid of ``min_size`` buckets (one level
   inside, another outside; single splits included) reduces the l2 cost by ``screen`` x the penalty;
   ``screen=0`` disables it; of the rest, skip those where no segmentation can pay for its penalty
   (``screen.pelt_may_change``: exact, PELT would find no change there);
6. PELT with the l2 cost (ruptures ``KernelCPD(kernel="linear")``, the C implementation) and the
   modified-BIC penalty ``beta * sigma^2 * log(n)`` with ``beta = 3`` by default: the Gaussian
   log-likelihood of a new segment costs 2 parameters (BIC ``2 log n``), plus the ``log n`` of the
   modified BIC (Zhang & Siegmund 2007) that keeps false alarms flat as series grow;
7. keep changes whose segment means (on the count scale) differ by ``min_relative_change`` and
   ``min_abs_change``; classify each as ``level_up`` or ``level_down``.

``fit_many`` runs steps 1-5 on many series of one grid at once (numpy across series; 3-4x less CPU than one
series at a time for a year of daily buckets) and PELT per series that passes the screen.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import ruptures as rpt

from nlp_service.anomaly.detectors.base import (
    ChangePoint,
    Detector,
    FloatArray,
    Series,
    median_last,
    nanmedian_last,
    nanmedian_rows,
    season_period,
)
from nlp_service.anomaly.detectors.networks import running_median
from nlp_service.anomaly.detectors.screen import pelt_may_change

_MAD_TO_SD = 1.4826
_PAIR_BLOCK = 1 << 19  # pairs scored at once by the pre-screen (bounds its memory)


def seasonal_factors(values: FloatArray, first_slot: int, period: int) -> FloatArray:
    """Per-bucket multiplicative seasonal factor from slot medians (``values[..., 0]`` is in ``first_slot``),
    along the last axis (leading axes: several series at once)."""
    lead, n = values.shape[:-1], values.shape[-1]
    rows = -(-(n + first_slot) // period)
    grid = np.full((*lead, rows * period), np.nan)
    grid[..., first_slot : first_slot + n] = values
    slot_median = nanmedian_rows(np.swapaxes(grid.reshape(*lead, rows, period), -1, -2))
    overall = nanmedian_last(values)
    factors = np.where(np.isnan(slot_median), 1.0, (slot_median + 0.5) / (overall + 0.5))
    return factors[..., (first_slot + np.arange(n)) % period]


class PeltChangePointDetector(Detector):
    """Level shifts (``ChangePoint``) in a count series; see the module docstring for the method."""

    def __init__(
        self,
        *,
        season_seconds: int | None = 7 * 86400,
        min_size: int = 5,
        beta: float = 3.0,
        min_sigma: float = 0.5,
        min_relative_change: float = 0.25,
        min_abs_change: float = 2.0,
        screen: float = 0.5,
    ) -> None:
        if min_size < 2:
            raise ValueError("min_size must be >= 2")
        self.season_seconds = season_seconds
        self.min_size = min_size
        self.beta = beta
        self.min_sigma = min_sigma
        self.min_relative_change = min_relative_change
        self.min_abs_change = min_abs_change
        self.screen = screen
        self.series_ = None
        self.penalty_: float = 0.0
        self.sigma_: float = 0.0
        self.levels_: FloatArray = np.zeros(0)  # the deseasonalised series the levels are measured on
        self.result_: tuple[ChangePoint, ...] = ()

    def fit(self, series: Series) -> PeltChangePointDetector:
        """Find the change points of ``series``."""
        (fitted,) = self.fit_many([series])
        self.__dict__.update(fitted.__dict__)
        return self

    def fit_many(self, series: Sequence[Series]) -> list[PeltChangePointDetector]:
        """One fitted copy of this detector per series; the steps before PELT run on all series at once
        (vectorised, same results). The series must share their length, bucket size and first timestamp."""
        if not series:
            return []
        first = series[0]
        if any(
            len(s) != len(first)
            or s.bucket_seconds != first.bucket_seconds
            or not np.array_equal(s.timestamps[:1], first.timestamps[:1])
            for s in series
        ):
            raise ValueError("fit_many needs series on one grid (length, bucket size, first timestamp)")
        out = []
        for s in series:
            det = copy.copy(self)
            det.series_, det.result_ = s, ()
            out.append(det)
        x = np.stack([s.values for s in series])
        n = x.shape[1]
        if n < 2 * self.min_size:
            return out
        rows = np.flatnonzero(~np.all(np.isnan(x), axis=1))
        if rows.size == 0:
            return out
        for i, found in zip(rows, self._detect(x[rows], first), strict=True):
            out[i].levels_, out[i].sigma_, out[i].penalty_, out[i].result_ = found
        return out

    def significance(self, cp: ChangePoint, *, after: int, before: int) -> tuple[float, float]:
        """``(z, two-sided p)`` of a change point's new level against its old one: the mean of the ``after``
        buckets from ``cp.index`` against the ``before`` buckets preceding it, on the Anscombe scale of the
        deseasonalised series, with the series' own noise level (at least Poisson's, 1).

        What makes a level shift as strict as a spike: the same p-value threshold decides both."""
        self._fitted()
        z = 2.0 * np.sqrt(np.maximum(self.levels_, 0.0) + 0.375)
        old = z[max(0, cp.index - before) : cp.index]
        new = z[cp.index : cp.index + after]
        if old.size == 0 or new.size == 0:
            return 0.0, 1.0
        sd = max(self.sigma_, 1.0) * math.sqrt(1.0 / old.size + 1.0 / new.size)
        score = abs(float(new.mean()) - float(old.mean())) / sd
        return score, math.erfc(score / math.sqrt(2.0))

    def predict(self) -> tuple[ChangePoint, ...]:
        """Change points sorted by index (each ``index`` is the first bucket of the new level)."""
        self._fitted()
        return self.result_

    def _detect(
        self, x: FloatArray, grid: Series
    ) -> list[tuple[FloatArray, float, float, tuple[ChangePoint, ...]]]:
        """(levels, sigma, penalty, change points) of each row of ``x`` (series on ``grid``'s buckets, none
        all-NaN, at least ``2 min_size`` long): steps 1-5 on all rows at once, PELT per row that passes."""
        n = x.shape[1]
        x = np.where(np.isnan(x), nanmedian_last(x), x)
        period = season_period(grid.bucket_seconds, self.season_seconds)
        y = x
        if period and n >= 2 * period:
            first = int(grid.timestamps[0] // grid.bucket_seconds) % period
            y = x / seasonal_factors(x, first, period)
        z = 2.0 * np.sqrt(np.maximum(y, 0.0) + 0.375)
        d = np.diff(z, axis=1)
        mad = median_last(np.abs(d - median_last(d, keepdims=True)))
        sigma = np.maximum(_MAD_TO_SD * mad / np.sqrt(2.0), self.min_sigma)
        w = self.min_size
        padded = np.concatenate([np.repeat(z[:, :1], w, axis=1), z, np.repeat(z[:, -1:], w, axis=1)], axis=1)
        med = running_median(padded, 2 * w + 1)
        z = np.clip(z, med - 3 * sigma[:, None], med + 3 * sigma[:, None])
        penalty = self.beta * sigma**2 * np.log(n)
        screened = np.ones(len(x), dtype=bool)
        if self.screen > 0:
            gains = _best_interval_gains(z, w)
            screened = gains >= self.screen * penalty
            unsure = np.flatnonzero(screened & (gains < penalty))  # the rest may change on the grid itself
            screened[unsure] = pelt_may_change(z[unsure], penalty[unsure], w)
        out = []
        for i in range(len(x)):
            found = self._changes(z[i], y[i], float(penalty[i]), grid) if screened[i] else ()
            out.append((y[i], float(sigma[i]), float(penalty[i]), found))
        return out

    def _changes(self, z: FloatArray, y: FloatArray, penalty: float, grid: Series) -> tuple[ChangePoint, ...]:
        """PELT on the clipped, stabilised series ``z``; changes measured on the levels ``y`` (steps 6-7)."""
        bkps = rpt.KernelCPD(kernel="linear", min_size=self.min_size).fit(z).predict(pen=penalty)
        edges = [0, *(int(b) for b in bkps)]
        out = []
        for a, b, c in zip(edges[:-2], edges[1:-1], edges[2:], strict=True):
            before, after = float(np.mean(y[a:b])), float(np.mean(y[b:c]))
            change = abs(after - before)
            if change < self.min_abs_change or change < self.min_relative_change * max(before, after):
                continue
            out.append(
                ChangePoint(
                    index=b,
                    timestamp=int(grid.timestamps[b]),
                    before_mean=before,
                    after_mean=after,
                    kind="level_up" if after > before else "level_down",
                )
            )
        return tuple(out)


def _best_interval_gains(z: FloatArray, step: int) -> FloatArray:
    """Per row of ``z``, the largest l2-cost reduction of "segment [a, b) has its own mean" over grid points
    a < b.

    Every pair is scored, for a block of series and of pairs at a time, so memory stays at about
    ``_PAIR_BLOCK`` floats per temporary whatever the length and the number of series (all pairs of one
    series at once took ~11 GB at 100,000 points).
    """
    m, n = z.shape
    c = np.concatenate([np.zeros((m, 1)), np.cumsum(z - z.mean(axis=1, keepdims=True), axis=1)], axis=1)
    grid = np.unique(np.concatenate([np.arange(0, n, step), [n]]))
    sums = c[:, grid]
    g = grid.size
    if g * (g - 1) // 2 > _PAIR_BLOCK or not np.isfinite(sums).all():
        return _square_grid_gains(sums, grid, n)
    a, b = np.triu_indices(g, 1)  # the pairs a < b only (the square below scores the others as 0)
    length = (grid[b] - grid[a]).astype(np.float64)
    denom = np.where(length < n, np.maximum(length * (n - length), 1.0), np.inf)  # gain 0 for [0, n)
    per_block = max(1, _PAIR_BLOCK // max(a.size, 1))  # series per block
    best = np.zeros(m)
    for s0 in range(0, m, per_block):
        block = sums[s0 : s0 + per_block]
        s = block[:, b] - block[:, a]
        gain = s * s * n / denom
        best[s0 : s0 + per_block] = np.maximum(best[s0 : s0 + per_block], gain.max(axis=1, initial=0.0))
    return best


def _square_grid_gains(sums: FloatArray, grid: np.ndarray, n: int) -> FloatArray:
    """``_best_interval_gains`` from the cumulative sums at the grid points, scoring the whole square of
    (start, end) pairs a block at a time (many grid points, or non-finite sums: NaN spreads as it always
    did)."""
    m, g = sums.shape
    ends = grid.astype(np.float64)
    rows = max(1, _PAIR_BLOCK // g)  # start points per block
    per_block = max(1, _PAIR_BLOCK // (g * min(rows, g)))  # series per block
    best = np.zeros(m)
    for first in range(0, g - 1, rows):
        starts = slice(first, min(first + rows, g - 1))
        length = ends[None, first + 1 :] - ends[starts, None]
        ok = (length > 0) & (length < n)
        denom = np.where(ok, np.maximum(length * (n - length), 1.0), np.inf)  # gain 0 where not ok
        for s0 in range(0, m, per_block):
            block = sums[s0 : s0 + per_block]
            s = block[:, None, first + 1 :] - block[:, starts, None]
            gain = s * s * n / denom
            best[s0 : s0 + per_block] = np.maximum(best[s0 : s0 + per_block], gain.max(axis=(1, 2)))
    return best
