"""Row-wise building blocks of the seasonal model over a (series x buckets) matrix: trailing windows, lagged
values, trimmed means (by the comparator network where the values are few and clean)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nlp_service.anomaly.detectors.base import FloatArray, IntArray
from nlp_service.anomaly.detectors.networks import clean, order_stats


def trailing(values: FloatArray, window: int, start: int) -> np.ndarray:
    """Rows ``t in [start, n)`` holding ``values[..., t - window : t]`` (NaN before the series starts), along
    the last axis (leading axes: several series at once)."""
    pad = np.full((*values.shape[:-1], window), np.nan)
    padded = np.concatenate([pad, values], axis=-1)
    return sliding_window_view(padded[..., :-1], window, axis=-1)[..., start:, :]


def trimmed_mean_rows(rows: np.ndarray, trim: float, min_trim: int = 0) -> FloatArray:
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


def lagged_trimmed_mean(
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
        return trimmed_mean_rows(lagged(x, idx, lags), trim, min_trim)
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
        out[rows, at] = trimmed_mean_rows(vals, trim, min_trim)
    return out


def lagged(x: FloatArray, idx: IntArray, lags: IntArray) -> FloatArray:
    """``x[:, idx - lag]`` for each lag (last axis), NaN before the series starts."""
    src = idx[:, None] - lags[None, :]
    return np.where(src >= 0, x[:, np.clip(src, 0, None)], np.nan)


def trailing_sum(values: FloatArray, window: int) -> FloatArray:
    """``sum(values[..., t - window : t])`` for every ``t`` (NaN counted as 0), along the last axis."""
    zero = np.zeros((*values.shape[:-1], 1))
    c = np.concatenate([zero, np.cumsum(np.nan_to_num(values), axis=-1)], axis=-1)
    t = np.arange(values.shape[-1])
    return c[..., t] - c[..., np.maximum(t - window, 0)]
