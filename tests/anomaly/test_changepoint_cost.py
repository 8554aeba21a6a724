"""Cost of change-point detection on the largest series the API accepts (issue 12, finding 1).

The pre-screen used to build every pair of grid points at once (quadratic memory: ~460 MB at 20,000 points,
~11 GB at 100,000). These tests hold the largest allowed posted series to a memory ceiling and check that the
bounded-memory screen returns exactly what the all-pairs version returned.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp_service.anomaly.detectors.changepoint import _best_interval_gains
from nlp_service.anomaly.posted import detect_posted_series
from nlp_service.anomaly.schemas import MAX_SERIES_POINTS, SeriesDetectRequest
from nlp_service.config import Settings

MEMORY_CEILING_MB = 64.0


def _best_interval_gain(z: np.ndarray, step: int) -> float:
    return float(_best_interval_gains(z[None, :], step)[0])


def all_pairs_gain(z: np.ndarray, step: int) -> float:
    """The former all-pairs screen, kept as the reference the bounded version must match."""
    n = z.size
    c = np.concatenate([[0.0], np.cumsum(z - z.mean())])
    grid = np.unique(np.concatenate([np.arange(0, n, step), [n]]))
    a, b = np.triu_indices(grid.size, k=1)
    length = (grid[b] - grid[a]).astype(np.float64)
    s = c[grid[b]] - c[grid[a]]
    gain = np.where(length < n, s**2 * n / np.maximum(length * (n - length), 1.0), 0.0)
    return float(gain.max()) if gain.size else 0.0


def hourly_counts(n: int, *, seed: int = 0, shift_at: float | None = 0.5) -> tuple[list[int], list[float]]:
    rng = np.random.default_rng(seed)
    lam = 20 + 5 * np.sin(np.arange(n) * 2 * np.pi / 24)
    if shift_at is not None:
        lam[int(n * shift_at) :] *= 1.6
    start = 1_700_000_000 // 3600 * 3600
    return [start + 3600 * i for i in range(n)], rng.poisson(lam).astype(float).tolist()


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=400),
    step=st.integers(1, 12),
)
def test_bounded_screen_equals_all_pairs(values: list[float], step: int) -> None:
    z = np.asarray(values)
    assert _best_interval_gain(z, step) == pytest.approx(all_pairs_gain(z, step), rel=1e-9, abs=1e-9)


def test_bounded_screen_equals_all_pairs_on_a_long_series() -> None:
    z = np.random.default_rng(3).normal(size=6_000)
    z[2_000:2_600] += 0.8
    assert _best_interval_gain(z, 5) == pytest.approx(all_pairs_gain(z, 5), rel=1e-12)


def test_bounded_screen_of_many_series_at_once_equals_all_pairs() -> None:
    z = np.random.default_rng(4).normal(size=(300, 400))
    z[::7, 100:160] += 1.0
    want = [all_pairs_gain(row, 5) for row in z]
    assert _best_interval_gains(z, 5) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("shift_at", [0.5, None], ids=["level-shift", "noise-only"])
def test_largest_posted_series_stays_under_memory_ceiling(shift_at: float | None) -> None:
    timestamps, values = hourly_counts(MAX_SERIES_POINTS, shift_at=shift_at)
    request = SeriesDetectRequest(timestamps=timestamps, values=values, bucket_seconds=3600)
    tracemalloc.start()
    try:
        response = detect_posted_series(request=request, settings=Settings())
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    assert response.points == MAX_SERIES_POINTS
    assert peak_mb < MEMORY_CEILING_MB, f"peak {peak_mb:.0f} MB for {MAX_SERIES_POINTS} points"
    if shift_at is not None:
        assert any(c.kind == "level_up" for c in response.change_points)


def test_a_series_over_the_cap_is_refused() -> None:
    timestamps, values = hourly_counts(MAX_SERIES_POINTS + 1, shift_at=None)
    with pytest.raises(ValueError, match="at most"):
        SeriesDetectRequest(timestamps=timestamps, values=values, bucket_seconds=3600)
