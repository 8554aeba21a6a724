"""Online spike/drop detection against a seasonal, history-only baseline.

Model, for every bucket ``t`` and using buckets ``< t`` only (no look-ahead):

* seasonal expectation ``s[t]``: median of the same slot in the previous ``n_periods`` periods,
  widened by ``neighbours`` adjacent slots on each side (more samples for fine buckets); a mean trimmed by
  ``trim`` at each end, and by at least ``seasonal_min_trim`` values while history is short (3 earlier
  weeks of a daily series: one of them a surge would otherwise lift the next week's expectation by a third);
  without usable seasonality, the median of the previous ``level_window`` buckets;
* level correction: ``expected[t] = s[t] * median((x + 1) / (s + 1))`` over the previous
  ``level_window`` buckets, so the baseline follows trend and level shifts within days;
* counts are negative binomial with mean ``expected`` and variance ``mu + alpha * mu**2``; ``alpha``
  comes from the previous ``dispersion_window`` buckets: a robust (MAD) estimate of the relative
  residual variance minus its Poisson part (default), or a winsorised moment estimate
  (``dispersion="moment"``, for bursty series); ``alpha = 0`` gives Poisson;
* a bucket is a ``spike`` when ``P(X >= x) <= p_threshold``, ``x >= min_count``,
  ``x - expected >= min_excess`` and ``x >= min_ratio * expected``; a ``drop`` mirrors this with
  the lower tail and the guards applied to ``expected`` (only when ``directions`` allows it).

The model is computed on a (series x buckets) matrix: ``fit_many`` scores many series of one length at once
(the per-call overhead of numpy dominated one short series at a time); ``fit`` is the one-row case.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import special

from nlp_service.anomaly.detectors.base import (
    Detector,
    FloatArray,
    IntArray,
    Series,
    Spike,
    nanmedian_rows,
    season_period,
)
from nlp_service.anomaly.detectors.networks import clean, median_rows, order_stats, trailing_clean

Directions = Literal["both", "up", "down"]
_MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class SeasonalScores:
    """Per-bucket output of the seasonal model for buckets ``[start, n)``."""

    expected: FloatArray
    alpha: FloatArray
    p_upper: FloatArray
    p_lower: FloatArray
    z: FloatArray  # signed deviance residual (approximately N(0, 1) under the model)
    guard_up: np.ndarray  # bool: the volume guards allow a spike here
    guard_down: np.ndarray  # bool: the volume guards allow a drop here
    p_threshold: float

    def row(self, i: int) -> SeasonalScores:
        """The scores of series ``i`` of a batch."""
        return SeasonalScores(
            self.expected[i], self.alpha[i], self.p_upper[i], self.p_lower[i], self.z[i],
            self.guard_up[i], self.guard_down[i], self.p_threshold,
        )  # fmt: skip

    @property
    def spike(self) -> np.ndarray:
        """Buckets passing every spike rule."""
        return self.guard_up & (self.p_upper <= self.p_threshold)

    @property
    def drop(self) -> np.ndarray:
        """Buckets passing every drop rule."""
        return self.guard_down & (self.p_lower <= self.p_threshold)

    def raw_score(self) -> FloatArray:
        """``|z|`` where the volume guards allow that direction, ignoring ``p_threshold``, else 0.

        The deviance residual ranks like the p-value but does not saturate when p underflows.
        """
        return np.where(
            (self.guard_up & (self.z > 0)) | (self.guard_down & (self.z < 0)), np.abs(self.z), 0.0
        )

    @property
    def score(self) -> FloatArray:
        """``raw_score`` where a spike or drop was flagged, else 0."""
        return np.where(self.spike | self.drop, self.raw_score(), 0.0)


def _trailing(values: FloatArray, window: int, start: int) -> np.ndarray:
    """Rows ``t in [start, n)`` holding ``values[..., t - window : t]`` (NaN before the series starts), along
    the last axis (leading axes: several series at once)."""
    pad = np.full((*values.shape[:-1], window), np.nan)
    padded = np.concatenate([pad, values], axis=-1)
    return sliding_window_view(padded[..., :-1], window, axis=-1)[..., start:, :]


def _nanmedian_rows(rows: np.ndarray) -> FloatArray:
    """Row medians ignoring NaN (NaN for all-NaN rows); a sort is much faster than ``np.nanmedian``."""
    return nanmedian_rows(rows)


def _trimmed_mean_rows(rows: np.ndarray, trim: float, min_trim: int = 0) -> FloatArray:
    """Mean of the non-NaN values along the last axis after dropping the ``trim`` fraction at both ends (at
    least ``min_trim`` values at each end of a row that keeps one then)."""
    srt = np.sort(rows, axis=-1)  # NaNs sort last
    k = np.sum(~np.isnan(rows), axis=-1)
    lo = np.floor(k * trim).astype(np.int64)
    if min_trim:
        lo = np.where(k > 2 * min_trim, np.maximum(lo, min_trim), lo)
    pos = np.arange(rows.shape[-1])
    keep = (pos >= lo[..., None]) & (pos < (k - lo)[..., None])
    cnt = keep.sum(axis=-1)
    total = np.where(keep, np.nan_to_num(srt), 0.0).sum(axis=-1)
    return np.where(cnt > 0, total / np.maximum(cnt, 1), np.nan)


def _lagged_trimmed_mean(
    x: FloatArray, start: int, lags: IntArray, trim: float, min_trim: int = 0
) -> FloatArray:
    """``_trimmed_mean_rows`` of ``x[:, t - lags]`` (NaN before the series starts) for ``t`` in
    ``[start, n)``: by the comparator network where those values are clean and few (the sum in the sort's
    order), by the sort elsewhere."""
    n, k = x.shape[-1], lags.size
    idx = np.arange(start, n)
    lo = int(np.floor(k * trim))
    lo = max(lo, min_trim) if k > 2 * min_trim else lo
    if k > 7 or lo < 1 or k - 2 * lo <= 0:
        # numpy adds a row of 8 or more pairwise, and the first value of a row apart: with at least one value
        # trimmed at each end (zeros in its sum), a row of up to 7 adds up as the running sum below does
        return _trimmed_mean_rows(_lagged(x, idx, lags), trim, min_trim)
    pad = int(lags.max(initial=0))  # x[:, t - lag] is xp[:, pad + t - lag]: views, no gathers
    xp = np.concatenate([np.zeros((x.shape[0], pad)), x], axis=1)
    cp = np.concatenate([np.zeros((x.shape[0], pad), dtype=bool), clean(x)], axis=1)
    cols, ok = [], np.ones((x.shape[0], idx.size), dtype=bool)
    for lag in lags:
        cols.append(xp[:, pad + start - lag : pad + n - lag])
        ok &= cp[:, pad + start - lag : pad + n - lag]
    kept = order_stats(cols, range(lo, k - lo))
    total = kept[0]
    for v in kept[1:]:
        total = total + v
    out = total / float(k - 2 * lo)
    bad = ~ok
    if bad.any():  # the cells with a gap, before the first period included
        rows, at = np.nonzero(bad)
        src = idx[at][:, None] - lags[None, :]
        vals = np.where(src >= 0, x[rows[:, None], np.clip(src, 0, None)], np.nan)
        out[rows, at] = _trimmed_mean_rows(vals, trim, min_trim)
    return out


def _lagged(x: FloatArray, idx: IntArray, lags: IntArray) -> FloatArray:
    """``x[:, idx - lag]`` for each lag (last axis), NaN before the series starts."""
    src = idx[:, None] - lags[None, :]
    return np.where(src >= 0, x[:, np.clip(src, 0, None)], np.nan)


def _trailing_sum(values: FloatArray, window: int) -> FloatArray:
    """``sum(values[..., t - window : t])`` for every ``t`` (NaN counted as 0), along the last axis."""
    zero = np.zeros((*values.shape[:-1], 1))
    c = np.concatenate([zero, np.cumsum(np.nan_to_num(values), axis=-1)], axis=-1)
    t = np.arange(values.shape[-1])
    return c[..., t] - c[..., np.maximum(t - window, 0)]


class SeasonalSpikeDetector(Detector):
    """Flag buckets far above (spikes) or below (drops) a seasonal negative-binomial baseline.

    ``season_seconds`` is the seasonal period (a week by default; a day for hourly/5-minute data),
    ignored when it is not a whole number (>= 2) of buckets. ``min_history`` buckets must precede a
    bucket before it can be flagged.
    """

    def __init__(
        self,
        *,
        season_seconds: int | None = 7 * 86400,
        n_periods: int = 6,
        neighbours: int = 0,
        level_window: int = 14,
        dispersion_window: int = 56,
        p_threshold: float = 1e-4,
        min_count: float = 10.0,
        min_excess: float = 5.0,
        min_ratio: float = 1.5,
        min_history: int = 14,
        trim: float = 0.2,
        seasonal_min_trim: int = 0,
        dispersion: Literal["robust", "moment"] = "robust",
        dispersion_clip: float = 2.0,
        directions: Directions = "both",
    ) -> None:
        if not 0 < p_threshold < 1:
            raise ValueError("p_threshold must be in (0, 1)")
        self.season_seconds = season_seconds
        self.n_periods = n_periods
        self.neighbours = neighbours
        self.level_window = level_window
        self.dispersion_window = dispersion_window
        self.p_threshold = p_threshold
        self.min_count = min_count
        self.min_excess = min_excess
        self.min_ratio = min_ratio
        self.min_history = min_history
        self.trim = trim
        self.seasonal_min_trim = seasonal_min_trim
        self.dispersion = dispersion
        self.dispersion_clip = dispersion_clip
        self.directions = directions
        self.series_ = None
        self.scores_: SeasonalScores | None = None
        self.start_ = 0

    def fit(self, series: Series, *, latest_only: bool = False) -> SeasonalSpikeDetector:
        """Score every bucket as if streaming (or, with ``latest_only``, just enough for the newest)."""
        (fitted,) = self.fit_many([series], latest_only=latest_only)
        self.series_, self.scores_, self.start_ = fitted.series_, fitted.scores_, fitted.start_
        return self

    def fit_many(self, series: Sequence[Series], *, latest_only: bool = False) -> list[SeasonalSpikeDetector]:
        """One fitted copy of this detector per series, scored together (vectorised across series, far
        faster than one at a time, same results); the series must share their length and bucket size."""
        if not series:
            return []
        n, bucket_seconds = len(series[0]), series[0].bucket_seconds
        if any(len(s) != n or s.bucket_seconds != bucket_seconds for s in series):
            raise ValueError("fit_many needs series of one length and bucket size")
        start = max(0, n - 1 - self.level_window - self.dispersion_window) if latest_only else 0
        sc = self._score(np.stack([s.values for s in series]), start, bucket_seconds)
        out = []
        for i, s in enumerate(series):
            det = copy.copy(self)
            det.series_, det.scores_, det.start_ = s, sc.row(i), start
            out.append(det)
        return out

    def predict(self) -> tuple[Spike, ...]:
        """All flagged buckets (spikes and drops), sorted by index."""
        series = self._fitted()
        sc = self.scores_
        assert sc is not None
        spike = sc.spike
        at = np.flatnonzero(spike | sc.drop)
        if not at.size:
            return ()
        z = sc.z[at]  # ``sc.score`` and the p-values at the flagged buckets only
        score = np.where((sc.guard_up[at] & (z > 0)) | (sc.guard_down[at] & (z < 0)), np.abs(z), 0.0)
        up = spike[at]
        p_value = np.where(up, sc.p_upper[at], sc.p_lower[at])
        pos = at + self.start_
        return tuple(
            Spike(
                index=i,
                timestamp=t,
                observed=o,
                expected=e,
                score=sc_,
                p_value=p,
                kind="spike" if u else "drop",
            )
            for i, t, o, e, sc_, p, u in zip(
                pos.tolist(),
                series.timestamps[pos].tolist(),
                series.values[pos].tolist(),
                sc.expected[at].tolist(),
                score.tolist(),
                p_value.tolist(),
                up.tolist(),
                strict=True,
            )
        )

    def predict_latest(self) -> Spike | None:
        """The newest bucket's anomaly, if any (what the always-on worker alerts on)."""
        spikes = self.predict()
        last = len(self._fitted()) - 1
        return spikes[-1] if spikes and spikes[-1].index == last else None

    def scores(self, *, gated: bool = True) -> FloatArray:
        """Per-bucket score ``|z|`` over the whole series: of flagged buckets only when ``gated``,
        else of every bucket the volume guards allow (for threshold sweeps such as NAB's)."""
        series = self._fitted()
        assert self.scores_ is not None
        out = np.zeros(len(series))
        out[self.start_ :] = self.scores_.score if gated else self.scores_.raw_score()
        return out

    # -- model -------------------------------------------------------------------------------
    def _expected(self, x: FloatArray, start: int, bucket_seconds: int) -> FloatArray:
        """History-only expected counts for buckets ``[start, n)`` of each row of ``x`` (series x buckets)."""
        period = season_period(bucket_seconds, self.season_seconds)
        lw = max(1, self.level_window)
        # compute the seasonal part for the level window too (the level correction needs it)
        s_start = max(0, start - lw)
        if not (period and self.n_periods > 0):
            recent = _trimmed_mean_rows(_trailing(x, lw, s_start), self.trim)
            return np.maximum(recent[:, start - s_start :], 0.0)
        h = min(self.neighbours, period - 1)
        lags = np.array([k * period - j for k in range(1, self.n_periods + 1) for j in range(-h, h + 1)])
        seasonal = _lagged_trimmed_mean(x, s_start, lags, self.trim, self.seasonal_min_trim)
        missing = np.isnan(seasonal)  # less than one period of history: recent buckets instead
        cols = np.flatnonzero(missing.any(axis=0))
        if cols.size:
            recent = _trimmed_mean_rows(_trailing(x, lw, s_start)[:, cols], self.trim)
            seasonal[:, cols] = np.where(missing[:, cols], recent, seasonal[:, cols])
        ratio = (x[:, s_start:] + 1.0) / (seasonal + 1.0)
        level = median_rows(_trailing(ratio, lw, 0), trailing_clean(ratio, lw))
        level = np.where(np.isnan(level), 1.0, level)
        seasonal = (seasonal + 1.0) * level - 1.0
        return np.maximum(seasonal[:, start - s_start :], 0.0)

    def _alpha(self, x: FloatArray, mu: FloatArray, start: int, dw: int) -> FloatArray:
        """Overdispersion for buckets ``[start, n)`` of ``x`` from the ``dw`` buckets before each.

        ``robust``: ``(1.4826 MAD(e))^2 - median(1 / mu)`` of relative residuals ``e = (x - mu) / mu``,
        refreshed every ``dw // 8`` buckets (so earlier spikes do not mask later ones);
        ``moment``: ``sum((x - mu)^2 - x) / sum(mu^2)`` with ``e`` winsorised at ``dispersion_clip``
        (heavier-tailed, so bursty series alert less).
        """
        scale = np.maximum(mu, 1.0)
        if self.dispersion == "moment":
            c = self.dispersion_clip
            resid = np.clip((x - mu) / scale, -c, c) * scale
            num = _trailing_sum(resid**2 - x, dw)[:, start:]
            den = _trailing_sum(mu**2, dw)[:, start:]
            return np.where(den > 0, np.maximum(num, 0.0) / np.maximum(den, 1e-12), 0.0)
        step = max(1, dw // 8)
        idx = np.arange(start, x.shape[-1])
        block = np.maximum((idx // step) * step, 0)
        ub, inv = np.unique(block, return_inverse=True)
        rel = _trailing((x - mu) / scale, dw, 0)[:, ub]
        pois = _trailing(1.0 / scale, dw, 0)[:, ub]
        med = nanmedian_rows(rel, overwrite=True)  # (sorts rel: the deviations below are the same values)
        mad = nanmedian_rows(np.abs(rel - med[..., None]), overwrite=True)
        alpha = np.maximum((_MAD_TO_SD * mad) ** 2 - nanmedian_rows(pois, overwrite=True), 0.0)
        return np.nan_to_num(alpha)[:, inv.ravel()]

    def _score(self, x: FloatArray, start: int, bucket_seconds: int) -> SeasonalScores:
        """Scores of buckets ``[start, n)`` of each row of ``x`` (series x buckets, one grid): 2-D fields."""
        n = x.shape[-1]
        if n == 0:
            e, b = np.zeros(x.shape), np.zeros(x.shape, dtype=bool)
            return SeasonalScores(e, e, e, e, e, b, b, self.p_threshold)
        dw = max(2, self.dispersion_window)
        e_start = max(0, start - dw - dw // 8)
        mu_all = self._expected(x, e_start, bucket_seconds)
        mu = mu_all[:, start - e_start :]
        alpha = self._alpha(x[:, e_start:], mu_all, start - e_start, dw)

        xs = x[:, start:]
        valid = ~np.isnan(xs) & ~np.isnan(mu) & (np.arange(start, n) >= self.min_history)
        xi = np.where(valid, np.round(xs), 0.0)
        m = np.where(valid, np.maximum(mu, 1e-3), 1.0)
        guard_up = valid & (xi >= self.min_count) & (xi - m >= self.min_excess) & (xi >= self.min_ratio * m)
        guard_down = valid & (m >= self.min_count) & (m - xi >= self.min_excess) & (xi * self.min_ratio <= m)
        if self.directions == "up":
            guard_down[:] = False
        elif self.directions == "down":
            guard_up[:] = False
        # exact tails only where a guard allows that direction (p = 1 elsewhere): it is the slow part
        p_up = _nb_tail(xi, m, alpha, guard_up, upper=True)
        p_lo = _nb_tail(xi, m, alpha, guard_down, upper=False)
        z = _nb_deviance_residual(xi, m, alpha)
        return SeasonalScores(mu, alpha, p_up, p_lo, z, guard_up, guard_down, self.p_threshold)


def _nb_tail(
    x: FloatArray, mu: FloatArray, alpha: FloatArray, where: np.ndarray, *, upper: bool
) -> FloatArray:
    """``P(X >= x)`` (``upper``) or ``P(X <= x)`` under NB(mean ``mu``, var ``mu + alpha mu^2``), Poisson
    when ``alpha = 0``, via regularised incomplete gamma/beta functions; 1 where ``where`` is false."""
    out = np.ones_like(mu)
    if not where.any():
        return out
    k, m, a = x[where], mu[where], alpha[where]
    pois = a < 1e-8
    r = 1.0 / np.where(pois, 1.0, a)
    q = m / (r + m)  # NB "failure" probability: P(X <= k) = I_{1-q}(r, k + 1)
    if upper:
        safe = np.maximum(k, 1.0)
        tail = np.where(pois, special.gammainc(safe, m), special.betainc(safe, r, q))
        out[where] = np.where(k <= 0, 1.0, tail)
    else:
        out[where] = np.where(pois, special.gammaincc(k + 1.0, m), special.betainc(r, k + 1.0, 1.0 - q))
    return out


def _nb_deviance_residual(x: FloatArray, mu: FloatArray, alpha: FloatArray) -> FloatArray:
    """Signed square root of the NB (Poisson when ``alpha = 0``) unit deviance of ``x`` given ``mu``."""
    xlogx = np.where(x > 0, x * np.log(np.maximum(x, 1e-12) / mu), 0.0)
    pois = alpha < 1e-8
    r = 1.0 / np.where(pois, 1.0, alpha)
    nb_tail = (x + r) * np.log((x + r) / (mu + r))
    dev = 2.0 * np.where(pois, xlogx - (x - mu), xlogx - nb_tail)
    return np.sign(x - mu) * np.sqrt(np.maximum(dev, 0.0))
