"""Order statistics of a few values per cell by a comparator network (elementwise min/max on whole arrays).

For short windows (up to ~16 values) across many series, ``np.minimum``/``np.maximum`` over the window's
columns is several times faster than sorting each small row, and it selects the very same values (no
arithmetic, so results are bit-identical to a sort) as long as the values hold no NaN and no ``-0.0``
(``clean``): callers use the network where ``clean`` holds and the sort elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nlp_service.anomaly.detectors.base import FloatArray, nanmedian_rows

MAX_WIDTH = 16  # wider windows: the network grows faster than a sort
_CHUNK = 8192  # values per column at a time (the k columns of a chunk stay in cache)


def batcher_pairs(k: int) -> tuple[tuple[int, int], ...]:
    """Comparators ``(i, j)``, ``i < j``, of Batcher's odd-even merge sort of ``k`` values (any ``k``):
    applied in order, each putting the smaller value at ``i``, they sort."""
    pairs = []
    p = 1
    while p < k:
        step = p
        while step >= 1:
            for j in range(step % p, k - step, 2 * step):
                for i in range(min(step, k - j - step)):
                    if (i + j) // (2 * p) == (i + j + step) // (2 * p):
                        pairs.append((i + j, i + j + step))
            step //= 2
        p *= 2
    return tuple(pairs)


@cache
def _plan(k: int, wanted: tuple[int, ...]) -> tuple[tuple[int, int, bool, bool], ...]:
    """The comparators needed for the ``wanted`` sorted positions: ``(i, j, need_min, need_max)``."""
    needed = set(wanted)
    plan = []
    for i, j in reversed(batcher_pairs(k)):
        lo, hi = i in needed, j in needed
        if lo or hi:
            plan.append((i, j, lo, hi))
            needed |= {i, j}
    return tuple(reversed(plan))


def order_stats(columns: Sequence[FloatArray], wanted: Sequence[int]) -> list[FloatArray]:
    """The ``wanted`` order statistics (0 = smallest) of ``columns[0..k-1]`` elementwise (arrays of one shape,
    at least 1-D, clean values): what ``np.sort(np.stack(columns, -1), -1)[..., wanted]`` gives, without the
    sort. Runs on cache-sized chunks of the leading axis, in place on copies of the chunk."""
    plan = _plan(len(columns), tuple(wanted))
    shape = columns[0].shape
    out = [np.empty(shape, dtype=columns[0].dtype) for _ in wanted]
    rows = max(1, _CHUNK // max(1, math.prod(shape[1:])))
    for r0 in range(0, shape[0], rows):
        v = [np.array(c[r0 : r0 + rows]) for c in columns]
        spare = np.empty_like(v[0])
        for i, j, lo, hi in plan:
            a, b = v[i], v[j]
            if lo and hi:
                np.minimum(a, b, out=spare)
                np.maximum(a, b, out=b)
                v[i], spare = spare, a
            elif lo:
                np.minimum(a, b, out=a)
            else:
                np.maximum(a, b, out=b)
        for o, w in zip(out, wanted, strict=True):
            o[r0 : r0 + rows] = v[w]
    return out


def clean(values: FloatArray) -> np.ndarray:
    """Elementwise: finite and not ``-0.0`` (values a network orders exactly as a sort does)."""
    return np.isfinite(values) & ~((values == 0) & np.signbit(values))


def trailing_clean(values: FloatArray, window: int) -> np.ndarray:
    """Elementwise along the last axis: ``values[..., t - window : t]`` holds ``window`` clean values (none
    before the series starts), i.e. where a trailing window can go through the network."""
    bad = np.cumsum(~clean(values), axis=-1)
    zero = np.zeros((*values.shape[:-1], 1), dtype=bad.dtype)
    bad = np.concatenate([zero, bad], axis=-1)  # bad[..., t]: not clean among values[..., :t]
    t = np.arange(values.shape[-1])
    return (t >= window) & (bad[..., t] - bad[..., np.maximum(t - window, 0)] == 0)


def median_rows(rows: np.ndarray, ok: np.ndarray) -> FloatArray:
    """``nanmedian_rows(rows)`` (median along the last axis, NaN ignored): by the network where ``ok`` (the
    row is clean), by the sort elsewhere."""
    k = rows.shape[-1]
    if k == 0 or k > MAX_WIDTH or not ok.any():
        return nanmedian_rows(rows)
    lo, hi = order_stats([rows[..., i] for i in range(k)], [(k - 1) // 2, k // 2])
    out = 0.5 * (lo + hi)
    bad = ~ok
    if bad.any():
        out[bad] = nanmedian_rows(rows[bad])
    return out


def running_median(padded: FloatArray, width: int) -> FloatArray:
    """``np.median`` of every window of ``width`` values along the last axis of ``padded`` (odd widths by
    the network when every value is clean)."""
    windows = sliding_window_view(padded, width, axis=-1)
    if width % 2 == 0 or width > MAX_WIDTH or not clean(padded).all():
        return np.median(windows, axis=-1)
    (mid,) = order_stats([windows[..., i] for i in range(width)], [width // 2])
    return mid
