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
* with ``baseline_samples`` ``n``, the expectation's own error counts too: it rests on about ``n`` earlier
  counts, so the bucket is tested against the Poisson-gamma predictive of a rate seen as ``n expected``
  comments in ``n`` buckets (Jeffreys prior, ``PRIOR_COMMENTS``): mean ``expected + 1 / (2 n)``, ``alpha``
  at least ``1 / (n expected + 1/2)``. At a few comments an hour the MAD of the residuals sees little of that
  error, and a bucket whose expectation came out low by chance would otherwise pass for a spike (the
  displayed expectation stays ``expected``);
* a bucket is a ``spike`` when ``P(X >= x) <= p_threshold``, ``x >= min_count``,
  ``x - expected >= min_excess`` and ``x >= min_ratio * expected``; a ``drop`` mirrors this with
  the lower tail and the guards applied to ``expected`` (only when ``directions`` allows it);
* with ``windows``, a bucket also ends a *window* of that many buckets scored as one by the same model
  (``detectors.windows``: the series of window sums, against the same window in earlier periods of
  ``window_season_seconds``, once a whole such period precedes it) at ``p_threshold x window_p_factor``: a
  surge of several buckets none of which passes alone.

The model is computed on a (series x buckets) matrix: ``fit_many`` scores many series of one length at once
(the per-call overhead of numpy dominated one short series at a time); ``fit`` is the one-row case.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nlp_service.anomaly.detectors.base import (
    Detector,
    FloatArray,
    Series,
    Spike,
    nanmedian_rows,
    season_period,
)
from nlp_service.anomaly.detectors.lagged import (
    lagged_trimmed_mean,
    trailing,
    trailing_sum,
    trimmed_mean_rows,
)
from nlp_service.anomaly.detectors.negbin import nb_deviance_residual, nb_tail
from nlp_service.anomaly.detectors.networks import median_rows, trailing_clean
from nlp_service.anomaly.detectors.windows import Scored, Sums, WindowScores, best_windows, rolling_sum

Directions = Literal["both", "up", "down"]
_MAD_TO_SD = 1.4826
PRIOR_COMMENTS = 0.5  # ``baseline_samples``: the Jeffreys prior's shape (half a comment) of a Poisson rate


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
    window: WindowScores | None = None  # the scan test over several buckets (``windows``), if any

    def row(self, i: int) -> SeasonalScores:
        """The scores of series ``i`` of a batch."""
        return SeasonalScores(
            self.expected[i], self.alpha[i], self.p_upper[i], self.p_lower[i], self.z[i],
            self.guard_up[i], self.guard_down[i], self.p_threshold,
            None if self.window is None else self.window.row(i),
        )  # fmt: skip

    @property
    def window_spike(self) -> np.ndarray:
        """Buckets that do not spike alone but end a window passing every spike rule (``windows``)."""
        if self.window is None:
            return np.zeros(self.expected.shape, dtype=bool)
        return (self.window.width > 0) & ~self.spike

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
        windows: Sequence[int] = (),
        window_p_factor: float = 0.01,
        window_season_seconds: int | None = None,
        window_joint_p: float = 0.01,
        baseline_samples: float = 0.0,
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
        self.windows = tuple(windows)
        self.window_p_factor = window_p_factor
        self.window_season_seconds = window_season_seconds
        self.window_joint_p = window_joint_p  # windows above this p get no joint verdict (none would use it)
        self.baseline_samples = baseline_samples  # effective counts behind an expectation (0: not used)
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
        wide = sc.window_spike
        at = np.flatnonzero(spike | sc.drop | wide)
        if not at.size:
            return ()
        z = sc.z[at]  # ``sc.score`` and the p-values at the flagged buckets only
        score = np.where((sc.guard_up[at] & (z > 0)) | (sc.guard_down[at] & (z < 0)), np.abs(z), 0.0)
        up = spike[at]
        p_value = np.where(up, sc.p_upper[at], sc.p_lower[at])
        observed, expected = series.values[at + self.start_], sc.expected[at]
        width = np.ones(at.size, dtype=np.int64)
        if sc.window is not None and wide.any():  # a window ending here: its sums and test instead
            w, win = wide[at], sc.window
            observed = np.where(w, win.observed[at], observed)
            expected = np.where(w, win.expected[at], expected)
            score = np.where(w, np.abs(win.z[at]), score)
            p_value = np.where(w, win.p_upper[at], p_value)
            width = np.where(w, win.width[at], width)
            up = up | w
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
                width=wd,
            )
            for i, t, o, e, sc_, p, u, wd in zip(
                pos.tolist(),
                series.timestamps[pos].tolist(),
                observed.tolist(),
                expected.tolist(),
                score.tolist(),
                p_value.tolist(),
                up.tolist(),
                width.tolist(),
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
            recent = trimmed_mean_rows(trailing(x, lw, s_start), self.trim)
            return np.maximum(recent[:, start - s_start :], 0.0)
        h = min(self.neighbours, period - 1)
        lags = np.array([k * period - j for k in range(1, self.n_periods + 1) for j in range(-h, h + 1)])
        seasonal = lagged_trimmed_mean(x, s_start, lags, self.trim, self.seasonal_min_trim)
        missing = np.isnan(seasonal)  # less than one period of history: recent buckets instead
        cols = np.flatnonzero(missing.any(axis=0))
        if cols.size:
            recent = trimmed_mean_rows(trailing(x, lw, s_start)[:, cols], self.trim)
            seasonal[:, cols] = np.where(missing[:, cols], recent, seasonal[:, cols])
        ratio = (x[:, s_start:] + 1.0) / (seasonal + 1.0)
        level = median_rows(trailing(ratio, lw, 0), trailing_clean(ratio, lw))
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
            num = trailing_sum(resid**2 - x, dw)[:, start:]
            den = trailing_sum(mu**2, dw)[:, start:]
            return np.where(den > 0, np.maximum(num, 0.0) / np.maximum(den, 1e-12), 0.0)
        step = max(1, dw // 8)
        idx = np.arange(start, x.shape[-1])
        block = np.maximum((idx // step) * step, 0)
        ub, inv = np.unique(block, return_inverse=True)
        rel = trailing((x - mu) / scale, dw, 0)[:, ub]
        pois = trailing(1.0 / scale, dw, 0)[:, ub]
        med = nanmedian_rows(rel, overwrite=True)  # (sorts rel: the deviations below are the same values)
        mad = nanmedian_rows(np.abs(rel - med[..., None]), overwrite=True)
        alpha = np.maximum((_MAD_TO_SD * mad) ** 2 - nanmedian_rows(pois, overwrite=True), 0.0)
        return np.nan_to_num(alpha)[:, inv.ravel()]

    def _model(
        self, x: FloatArray, start: int, bucket_seconds: int
    ) -> tuple[FloatArray, FloatArray, np.ndarray, FloatArray, FloatArray]:
        """``(mu, alpha, valid, counts, expected)`` of buckets ``[start, n)`` of each row of ``x``: the
        model's expectations and overdispersion; counts rounded and the expectations tested (the predictive
        mean with ``baseline_samples``) floored where valid (history enough, neither missing), neutral
        elsewhere."""
        n = x.shape[-1]
        dw = max(2, self.dispersion_window)
        e_start = max(0, start - dw - dw // 8)
        mu_all = self._expected(x, e_start, bucket_seconds)
        mu = mu_all[:, start - e_start :]
        alpha = self._alpha(x[:, e_start:], mu_all, start - e_start, dw)
        test_mu = mu
        if self.baseline_samples > 0:  # the predictive of a rate seen as n mu comments in n buckets
            seen = self.baseline_samples * np.nan_to_num(mu, nan=0.0) + PRIOR_COMMENTS
            alpha = np.maximum(alpha, 1.0 / seen)
            test_mu = mu + PRIOR_COMMENTS / self.baseline_samples
        xs = x[:, start:]
        valid = ~np.isnan(xs) & ~np.isnan(mu) & (np.arange(start, n) >= self.min_history)
        xi, m = np.where(valid, np.round(xs), 0.0), np.where(valid, np.maximum(test_mu, 1e-3), 1.0)
        return mu, alpha, valid, xi, m

    def _score(self, x: FloatArray, start: int, bucket_seconds: int) -> SeasonalScores:
        """Scores of buckets ``[start, n)`` of each row of ``x`` (series x buckets, one grid): 2-D fields."""
        n = x.shape[-1]
        if n == 0:
            e, b = np.zeros(x.shape), np.zeros(x.shape, dtype=bool)
            return SeasonalScores(e, e, e, e, e, b, b, self.p_threshold)
        mu, alpha, valid, xi, m = self._model(x, start, bucket_seconds)
        guard_up = self._guard_up(valid, xi, m)
        guard_down = valid & (m >= self.min_count) & (m - xi >= self.min_excess) & (xi * self.min_ratio <= m)
        if self.directions == "up":
            guard_down[:] = False
        elif self.directions == "down":
            guard_up[:] = False
        # exact tails only where a guard allows that direction (p = 1 elsewhere): it is the slow part
        p_up = nb_tail(xi, m, alpha, guard_up, upper=True)
        p_lo = nb_tail(xi, m, alpha, guard_down, upper=False)
        z = nb_deviance_residual(xi, m, alpha)
        window = None
        if self.windows and self.directions != "down":
            alone = guard_up & (p_up <= self.p_threshold)
            window = self._windows(x, start, bucket_seconds, valid & (xi > m), alone, mu)
        return SeasonalScores(mu, alpha, p_up, p_lo, z, guard_up, guard_down, self.p_threshold, window)

    def _guard_up(self, valid: np.ndarray, xi: FloatArray, m: FloatArray) -> np.ndarray:
        return valid & (xi >= self.min_count) & (xi - m >= self.min_excess) & (xi >= self.min_ratio * m)

    def _windows(
        self,
        x: FloatArray,
        start: int,
        bucket_seconds: int,
        above: np.ndarray,
        alone: np.ndarray,
        mu: FloatArray,
    ) -> WindowScores:
        """The scan test (``detectors.windows``): each width's window sums scored as a series of their own,
        once ``min_history`` and a whole window season precede the window; for the joint test also against
        the larger of that expectation and the sum of their buckets' (``mu``: the single buckets' model,
        resting on more days than the few earlier weeks of the same window)."""
        scored = []
        model = copy.copy(self)
        model.season_seconds = self.window_season_seconds or self.season_seconds
        # not for window sums (evaluation/INCIDENT_ROUNDS.md, round 12: it lost weak surges' windows)
        model.baseline_samples = 0.0
        history = max(self.min_history, season_period(bucket_seconds, model.season_seconds) or 0)
        at = np.arange(start, x.shape[-1])
        for w in sorted({w for w in self.windows if w > 1}):
            _, alpha, valid, xi, m = model._model(rolling_sum(x, w), start, bucket_seconds)
            whole = valid & (at >= history + w - 1)
            p = nb_tail(xi, m, alpha, self._guard_up(whole, xi, m), upper=True)
            m_sum = np.where(valid, np.fmax(m, rolling_sum(mu, w)), m)
            wanted = self._guard_up(whole, xi, m_sum) & (p <= self.window_joint_p)  # p_sum >= p
            p_sum = nb_tail(xi, m_sum, alpha, wanted, upper=True)
            z = nb_deviance_residual(xi, m, alpha)
            scored.append(Scored(w, xi, m, p, z, Sums(m_sum, p_sum, nb_deviance_residual(xi, m_sum, alpha))))
        return best_windows(scored, above, alone, self.p_threshold * self.window_p_factor)
