"""Spikes spread over several buckets: the scan test of ``SeasonalSpikeDetector(windows=...)``.

A surge of a few comments an hour above a night-time baseline of one or two never puts ``min_count``
comments into one hour, yet six such hours in a row are a strong signal. For each width ``w`` the series of
sums of ``w`` consecutive buckets (each ending at ``t``) is scored by the detector's own model, as a series of
its own: seasonal expectation of the same window in earlier periods, level correction, overdispersion from
the window sums' own residuals (so the correlation of neighbouring buckets and the baseline's error at low
counts widen the test instead of passing for a signal), the same volume guards as one bucket and a stricter
p-value threshold (the detector's ``window_p_factor`` of its own: many overlapping windows are tested). A
window must also be *tight*: its first and last buckets are each above their own expectation, so it neither
drags a finished surge on nor reaches back before it began; and hold no bucket that spikes alone (that one is
the alert, not the window around it). Each bucket keeps its most significant window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from nlp_service.anomaly.detectors.base import FloatArray, IntArray


@dataclass(frozen=True)
class Sums:
    """The window sums' verdict against a second expectation (the joint test's: ``anomaly.joint``);
    ``p_upper`` is 1 where the guards fail, the window is not tight, or its own p-value is too large for the
    joint test to take it."""

    expected: FloatArray
    p_upper: FloatArray
    z: FloatArray

    def row(self, i: int) -> Sums:
        return Sums(self.expected[i], self.p_upper[i], self.z[i])


@dataclass(frozen=True)
class Scored:
    """One width's window sums over the scored buckets and the model's verdict on them; ``joint``: the
    verdict the joint test uses."""

    width: int
    observed: FloatArray
    expected: FloatArray
    p_upper: FloatArray  # 1 where the volume guards fail (after best_windows: or the window is not tight)
    z: FloatArray
    joint: Sums

    def row(self, i: int) -> Scored:
        """The windows of series ``i`` of a batch."""
        return Scored(
            self.width, self.observed[i], self.expected[i], self.p_upper[i], self.z[i], self.joint.row(i)
        )  # fmt: skip


@dataclass(frozen=True)
class WindowScores:
    """Per bucket (the window's last): the best passing window's ``width`` (0: none), its sum, expectation,
    upper-tail p-value and deviance residual; ``each``: every width's tight windows (for the joint test,
    ``anomaly.joint``)."""

    width: IntArray
    observed: FloatArray
    expected: FloatArray
    p_upper: FloatArray
    z: FloatArray
    each: tuple[Scored, ...] = ()

    def row(self, i: int) -> WindowScores:
        """The windows of series ``i`` of a batch."""
        return WindowScores(
            self.width[i], self.observed[i], self.expected[i], self.p_upper[i], self.z[i],
            tuple(s.row(i) for s in self.each),
        )  # fmt: skip


def rolling_sum(x: FloatArray, w: int) -> FloatArray:
    """``sum(x[..., t - w + 1 : t + 1])`` for every ``t`` along the last axis; NaN where the window is not
    whole (before the series starts, or holding a missing bucket)."""
    out = np.full(x.shape, np.nan)
    if w > x.shape[-1]:
        return out
    c = np.concatenate([np.zeros((*x.shape[:-1], 1)), np.cumsum(np.nan_to_num(x), axis=-1)], axis=-1)
    missing = np.concatenate([np.zeros((*x.shape[:-1], 1)), np.cumsum(np.isnan(x), axis=-1)], axis=-1)
    sums = c[..., w:] - c[..., :-w]
    whole = (missing[..., w:] - missing[..., :-w]) == 0
    out[..., w - 1 :] = np.where(whole, sums, np.nan)
    return out


def tight(above: np.ndarray, w: int) -> np.ndarray:
    """Buckets ``t`` whose window of ``w`` starts and ends with a bucket of ``above``."""
    out = np.zeros(above.shape, dtype=bool)
    out[..., w - 1 :] = above[..., w - 1 :] & above[..., : above.shape[-1] - w + 1]
    return out


def best_windows(
    scored: Iterable[Scored], above: np.ndarray, alone: np.ndarray, p_threshold: float
) -> WindowScores:
    """Per bucket, the most significant tight window passing ``p_threshold`` without a bucket of ``alone``
    (``above``: buckets above their expectation; ``alone``: buckets that spike alone)."""
    shape = above.shape
    width = np.zeros(shape, dtype=np.int64)
    observed, expected, z = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    p_best = np.ones(shape)
    each = []
    for s in scored:
        is_tight = tight(above, s.width)
        p = np.where(is_tight, s.p_upper, 1.0)
        j = s.joint
        joint = Sums(j.expected, np.where(is_tight, j.p_upper, 1.0), j.z)
        each.append(Scored(s.width, s.observed, s.expected, p, s.z, joint))
        clear = rolling_sum(alone.astype(np.float64), s.width) == 0
        better = clear & (p <= p_threshold) & (p < p_best)
        width = np.where(better, s.width, width)
        observed = np.where(better, s.observed, observed)
        expected = np.where(better, s.expected, expected)
        z = np.where(better, s.z, z)
        p_best = np.where(better, p, p_best)
    return WindowScores(width, observed, expected, p_best, z, tuple(each))
