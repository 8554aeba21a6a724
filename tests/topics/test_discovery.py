"""Topic discovery on small synthetic embeddings (no model, no dataset)."""

from __future__ import annotations

import numpy as np
import pytest

from nlp_service.topics.discovery import discover, k_candidates


def _blobs(sizes: list[int], dim: int = 32, spread: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.repeat(np.arange(len(sizes)), sizes)
    return centres[y] + spread * rng.normal(size=(len(y), dim)), y


def _pure(labels: np.ndarray, y: np.ndarray) -> bool:
    """Every found cluster holds one true group, and every true group is one cluster."""
    pairs = {(a, b) for a, b in zip(labels.tolist(), y.tolist(), strict=True) if a >= 0}
    return len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


@pytest.mark.parametrize("n_groups", [3, 6, 9])
def test_separable_clusters_are_recovered_with_the_right_count(n_groups):
    x, y = _blobs([25] * n_groups, seed=n_groups)
    found = discover(x, seed=0)
    assert found.k == n_groups
    assert len(found.clusters) == n_groups
    assert found.noise_share == 0.0
    assert _pure(found.labels, y)
    assert sorted(i for c in found.clusters for i in c.members.tolist()) == list(range(len(y)))


def test_deterministic_with_a_seed_and_bounded_by_the_sample_cap():
    x, y = _blobs([40, 40, 40, 40], spread=0.1, seed=5)
    a = discover(x, seed=3, sample_cap=60)
    b = discover(x, seed=3, sample_cap=60)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert len(a.labels) == len(x)  # rows outside the sample join the nearest centre
    assert a.k == 4 and _pure(a.labels, y)


def test_small_clusters_and_far_rows_are_noise():
    x, _ = _blobs([30, 30, 2], seed=2)
    found = discover(x, seed=0, min_cluster_size=5, k_max=10)
    assert len(found.clusters) == 2
    assert set(found.noise.tolist()) == {60, 61}
    assert np.all(found.labels[found.noise] == -1)
    assert [c.size for c in found.clusters] == [30, 30]


def test_too_few_rows_give_only_noise():
    found = discover(np.eye(4, 8), seed=0)
    assert found.clusters == [] and found.noise_share == 1.0


def test_k_candidates_are_bounded():
    ks = k_candidates(1000)
    assert ks[0] == 2 and ks[-1] == int(2 * np.sqrt(1000)) and ks == sorted(set(ks))
