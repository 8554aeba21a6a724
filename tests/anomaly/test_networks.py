"""The min/max networks give bit-for-bit what the sorts they replace give (NaN and -0.0 left to the sort)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from nlp_service.anomaly.detectors.base import median_last, nanmedian_last, nanmedian_rows
from nlp_service.anomaly.detectors.lagged import lagged, lagged_trimmed_mean, trailing, trimmed_mean_rows
from nlp_service.anomaly.detectors.networks import (
    batcher_pairs,
    median_rows,
    order_stats,
    running_median,
    trailing_clean,
)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("k", range(1, 17))
def test_the_network_sorts_every_binary_input(k: int) -> None:  # 0-1 principle: then it sorts anything
    bits = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1).astype(np.float64)
    got = np.stack(order_stats([bits[:, i] for i in range(k)], list(range(k))), axis=-1)
    assert same(got, np.sort(bits, axis=-1))
    assert all(i < j for i, j in batcher_pairs(k))


@pytest.mark.parametrize("k", [2, 5, 6, 11, 14])
def test_selected_positions_equal_the_sort(k: int) -> None:
    rng = np.random.default_rng(k)
    v = np.round(rng.normal(size=(300, 40, k)) * 3, 1) + 0.0  # ties included (no -0.0: not clean)
    srt = np.sort(v, axis=-1)
    for wanted in ([k // 2], [(k - 1) // 2, k // 2], list(range(k))):
        got = order_stats([v[..., i] for i in range(k)], wanted)
        assert all(same(g, srt[..., w]) for g, w in zip(got, wanted, strict=True))


def test_running_median_equals_np_median() -> None:
    rng = np.random.default_rng(1)
    z = rng.gamma(2.0, 5.0, size=(50, 400))
    for width in (5, 11, 15, 12, 21):
        want = np.median(sliding_window_view(z, width, axis=-1), axis=-1)
        assert same(running_median(z, width), want)
    z[3, 7] = np.nan
    assert same(running_median(z, 11), np.median(sliding_window_view(z, 11, axis=-1), axis=-1))


def test_median_rows_equals_nanmedian_rows_with_gaps() -> None:
    rng = np.random.default_rng(2)
    x = rng.poisson(8.0, size=(30, 200)) / rng.uniform(0.5, 2.0, size=(30, 200))
    x[rng.random(x.shape) < 0.02] = np.nan
    x[0, 5] = -0.0
    for window in (3, 14, 24):
        rows = trailing(x, window, 0)
        assert same(median_rows(rows, trailing_clean(x, window)), nanmedian_rows(rows))


def test_lagged_trimmed_mean_equals_the_sort() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 150)) * 10 ** rng.uniform(-3, 3, size=(40, 150))  # rounding differs by order
    x[rng.random(x.shape) < 0.01] = np.nan
    lag_sets = ([7, 14, 21, 28, 35, 42], [1, 2, 3], list(range(1, 8)), [7, 14, 21, 28, 35], list(range(9)))
    for lags in lag_sets:
        lag = np.array(lags)
        for trim in (0.0, 0.2, 0.4):
            want = trimmed_mean_rows(lagged(x, np.arange(10, 150), lag), trim)
            assert same(lagged_trimmed_mean(x, 10, lag, trim), want)


def test_median_last_and_nanmedian_last_equal_numpy() -> None:
    rng = np.random.default_rng(4)
    for k in (2, 3, 364, 365):
        d = np.diff(rng.poisson(9.0, size=(20, k + 1)) ** 0.5, axis=-1)
        assert same(median_last(d), np.median(d, axis=-1))
        assert same(median_last(d, keepdims=True), np.median(d, axis=-1, keepdims=True))
        d[2, -1], d[3, 0] = np.nan, -0.0
        assert same(median_last(d), np.median(d, axis=-1))
        assert same(nanmedian_last(d), np.nanmedian(d, axis=-1, keepdims=True))
