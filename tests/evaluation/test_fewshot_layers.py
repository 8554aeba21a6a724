"""The layer measurement's joint solver fits the few-shot objective; feature sets have their shape."""

from __future__ import annotations

import numpy as np

from evaluation.fewshot_layers import FeatureSet, fast_one_vs_rest
from nlp_service.topics.fewshot import score_matrix, train_one_vs_rest


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 24))
    y = np.repeat(np.arange(5), 8)
    x = centres[y] + rng.normal(scale=1.2, size=(len(y), 24))
    background = centres[rng.integers(0, 5, 200)] + rng.normal(scale=1.2, size=(200, 24))
    return x, y, centres, background


def test_fast_solver_matches_train_one_vs_rest() -> None:
    x, y, priors, background = _data()
    # with a background, train_one_vs_rest also spreads labels over it (spreading.spread_labels), which the
    # fast solver of the layer study (measured before spreading) does not: compared without it
    del background
    for extra in ({}, {"priors": priors}):
        topics = train_one_vs_rest(x, y, 5, c=10.0, **extra)  # type: ignore[arg-type]
        coef, bias = fast_one_vs_rest(
            x, y, 5, c=10.0, priors=extra.get("priors"), background=extra.get("background")
        )
        reference = np.stack([t.scorer.weights for t in topics], axis=1)
        for j in range(5):
            assert np.corrcoef(reference[:, j], coef[:, j])[0, 1] > 0.99
        probe = np.random.default_rng(1).normal(size=(300, 24))
        norm = probe / np.linalg.norm(probe, axis=1, keepdims=True)
        agree = (score_matrix(topics, probe).argmax(1) == (norm @ coef + bias).argmax(1)).mean()
        assert agree > 0.95


def test_feature_set_blocks() -> None:
    layers = np.random.default_rng(0).normal(size=(10, 7, 4))
    concat = FeatureSet((4, 5, 6), (0.5, 1.0, 1.0)).build(layers, layers)
    assert concat.shape == (10, 12)
    np.testing.assert_allclose(np.linalg.norm(concat[:, :4], axis=1), 0.5)
    standardised = FeatureSet((6,)).build(layers, layers)
    assert abs(float(standardised.mean())) < 0.2
    summed = FeatureSet((5, 6), standardise=False, average=True).build(layers, layers)
    assert summed.shape == (10, 4)
