"""Exact skip test for PELT: series in which no segmentation can pay for its penalty.

For the l2 cost, the gain of a segmentation with ``K`` changes over none is ``sum_j n_j m_j^2`` (segment
lengths ``n_j``, segment means ``m_j`` of the centred series), and ``n_j m_j^2 = g_j (n - n_j) / n`` where
``g_j`` is the gain of "segment j has its own mean, the rest another" (``n S^2 / (L (n - L))``). The
``(n - n_j) / n`` sum to ``K``, so the gain is at most ``K`` times the best such interval gain over
intervals of ``min_size`` to ``n - min_size`` buckets. Below the penalty (per change) no segmentation beats
none: PELT (exact) returns no change point and may be skipped. The best interval gain is bounded on
blocks of ``min_size`` cumulative-sum points (the largest spread of the sums between two blocks over the
smallest ``L (n - L)`` of their interval lengths); only block pairs whose bound reaches the penalty are
scored exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nlp_service.anomaly.detectors.base import FloatArray, IntArray

_TOL = 1e-7  # margin, relative to sum(z^2), covering rounding in PELT's costs and in these bounds
_BLOCK = 1 << 19  # values per temporary (bounds memory whatever the number and length of the series)


def pelt_may_change(z: FloatArray, penalty: FloatArray, min_size: int) -> np.ndarray:
    """Per row of ``z`` (series x buckets, finite): False where PELT with the l2 cost, ``min_size`` and
    this ``penalty`` per change provably finds no change point; True where it may."""
    m, n = z.shape
    out = np.ones(m, dtype=bool)
    w = min_size
    blocks = -(-(n + 1) // w)
    if m == 0 or n < 2 * w or blocks * blocks > _BLOCK // 2:
        return out  # too short to change, or too long to bound cheaply: PELT decides
    first = np.arange(blocks) * w
    last = np.minimum(first + w - 1, n)
    a_blk, b_blk = np.triu_indices(blocks, 1)
    short = np.maximum(first[b_blk] - last[a_blk], w).astype(np.float64)
    long = np.minimum(last[b_blk] - first[a_blk], n - w).astype(np.float64)
    keep = short <= long
    short, long = short[keep], long[keep]
    pairs = _Pairs(first, a_blk[keep], b_blk[keep], n / np.minimum(short * (n - short), long * (n - long)))
    todo = np.flatnonzero(np.isfinite(z).all(axis=1) & np.isfinite(penalty))  # the rest: PELT decides
    rows = max(1, _BLOCK // max(pairs.a.size, 1))
    for r0 in range(0, todo.size, rows):
        at = todo[r0 : r0 + rows]
        out[at] = _may_change(z[at], penalty[at], w, pairs)
    return out


class _Pairs(NamedTuple):
    """Block pairs ``(a, b)`` (``a < b``) holding intervals of allowed length, with ``n / min L (n - L)``."""

    first: IntArray  # first cumulative-sum point of each block
    a: IntArray
    b: IntArray
    scale: FloatArray


def _may_change(z: FloatArray, penalty: FloatArray, w: int, pairs: _Pairs) -> np.ndarray:
    m, n = z.shape
    centred = z - z.mean(axis=1, keepdims=True)
    c = np.concatenate([np.zeros((m, 1)), np.cumsum(centred, axis=1)], axis=1)  # c[:, b] - c[:, a]: sum
    limit = penalty - _TOL * np.sum(z * z, axis=1)  # skip only where every gain stays below this
    blocks = pairs.first.size
    padded = np.concatenate([c, np.repeat(c[:, -1:], blocks * w - n - 1, axis=1)], axis=1)
    shaped = padded.reshape(m, blocks, w)
    hi, lo = shaped.max(axis=2), shaped.min(axis=2)
    spread = np.maximum(hi[:, pairs.b] - lo[:, pairs.a], hi[:, pairs.a] - lo[:, pairs.b])
    flagged = spread * spread * pairs.scale >= limit[:, None]
    rows, which = np.nonzero(flagged)
    out = np.zeros(m, dtype=bool)
    off = np.arange(w)
    step = max(1, _BLOCK // (w * w))
    for k0 in range(0, rows.size, step):  # exact gains over every (a, b) of the flagged block pairs
        r, p = rows[k0 : k0 + step], which[k0 : k0 + step]
        a = pairs.first[pairs.a[p]][:, None, None] + off[None, :, None]
        b = pairs.first[pairs.b[p]][:, None, None] + off[None, None, :]
        length = (b - a).astype(np.float64)
        ok = (b <= n) & (length >= w) & (length <= n - w)
        s = c[r[:, None, None], np.minimum(b, n)] - c[r[:, None, None], a]
        gain = np.where(ok, s * s * n / np.where(ok, length * (n - length), 1.0), 0.0)
        out[r[(gain >= limit[r][:, None, None]).any(axis=(1, 2))]] = True
    return out
