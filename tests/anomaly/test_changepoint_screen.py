"""The exact PELT skip test: where it says "no change", PELT (ruptures, the l2 cost) finds none."""

from __future__ import annotations

import numpy as np
import pytest
import ruptures as rpt

from nlp_service.anomaly.detectors.changepoint import _best_interval_gains, _square_grid_gains
from nlp_service.anomaly.detectors.screen import pelt_may_change


def pelt_changes(z: np.ndarray, penalty: float, min_size: int) -> int:
    return len(rpt.KernelCPD(kernel="linear", min_size=min_size).fit(z).predict(pen=penalty)) - 1


@pytest.mark.parametrize(("n", "min_size"), [(365, 5), (120, 5), (97, 3), (400, 7), (10, 5)])
def test_a_skipped_series_has_no_change_point(n: int, min_size: int) -> None:
    rng = np.random.default_rng(n + min_size)
    z = rng.normal(size=(300, n)) * rng.uniform(0.5, 3.0, size=(300, 1)) + rng.uniform(2, 40, size=(300, 1))
    z[::3, n // 3 : n // 3 + 2 * min_size] += rng.uniform(0.0, 2.0, size=(100, 1))  # some shifts
    sigma2 = rng.uniform(0.2, 4.0, size=300)
    penalty = rng.uniform(0.5, 3.0, size=300) * sigma2 * np.log(n)
    may = pelt_may_change(z, penalty, min_size)
    found = np.array([pelt_changes(row, float(p), min_size) for row, p in zip(z, penalty, strict=True)])
    assert not np.any(~may & (found > 0))  # exact: never skips a series PELT would split
    if n >= 2 * min_size:
        assert np.sum(~may) > 30  # and it does skip


def best_interval_gain(z: np.ndarray, min_size: int) -> float:
    """The largest "own mean inside [a, b)" gain over every interval of min_size..n - min_size buckets."""
    n = z.size
    c = np.concatenate([[0.0], np.cumsum(z - z.mean())])
    a, b = np.triu_indices(n + 1, k=1)
    length = (b - a).astype(np.float64)
    ok = (length >= min_size) & (length <= n - min_size)
    return float(np.max((c[b] - c[a])[ok] ** 2 * n / (length[ok] * (n - length[ok]))))


def test_penalties_near_the_bound_skip_only_below_it() -> None:
    rng = np.random.default_rng(7)
    z = rng.poisson(rng.uniform(1, 60, size=(200, 1)), size=(200, 150)).astype(np.float64)
    z[::4, 70:] *= 1.2
    gains = np.array([best_interval_gain(row, 5) for row in z])
    penalty = gains * rng.choice([0.5, 0.999, 1.0, 1.001, 1.01, 1.5], size=200)
    may = pelt_may_change(z, penalty, 5)
    assert np.all(may[penalty <= gains])  # a gain reaching the penalty: never skipped
    found = np.array([pelt_changes(row, float(p), 5) for row, p in zip(z, penalty, strict=True)])
    assert not np.any(~may & (found > 0))
    assert np.sum(~may) > 20


def test_non_finite_rows_are_left_to_pelt() -> None:
    z = np.ones((3, 50))
    z[0, 3] = np.nan
    penalty = np.array([10.0, np.nan, 10.0])
    assert pelt_may_change(z, penalty, 5).tolist() == [True, True, False]


def test_a_series_too_long_to_bound_is_left_to_pelt() -> None:
    z = np.zeros((1, 20_000))
    assert pelt_may_change(z, np.array([10.0]), 5).tolist() == [True]


@pytest.mark.parametrize("n", [7, 365, 1000])
def test_grid_gains_of_the_pairs_a_lt_b_equal_the_whole_square(n: int) -> None:
    z = np.random.default_rng(n).poisson(30, size=(40, n)).astype(np.float64) ** 0.5
    z[::5, n // 2 :] += 0.7
    c = np.concatenate([np.zeros((40, 1)), np.cumsum(z - z.mean(axis=1, keepdims=True), axis=1)], axis=1)
    grid = np.unique(np.concatenate([np.arange(0, n, 5), [n]]))
    assert np.array_equal(_best_interval_gains(z, 5), _square_grid_gains(c[:, grid], grid, n))
