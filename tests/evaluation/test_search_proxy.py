"""The search proxy's metrics on hand-made vectors whose neighbours are known."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.search_proxy import neighbour_metrics


def unit(*rows: list[float]) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_accuracy_at_1_and_mrr() -> None:
    corpus = unit([1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9])
    corpus_labels = np.array([0, 1, 1, 2])
    queries = unit([1, 0.01], [0.05, 1], [1, -0.5])
    # query 0 (label 1): ranks corpus 0 (label 0), then 1 (label 1): rank 2
    # query 1 (label 2): ranks corpus 2 (label 1), then 3 (label 2): rank 2
    # query 2 (label 0): nearest is corpus 0 (label 0): rank 1
    metrics = neighbour_metrics(queries, np.array([1, 2, 0]), corpus, corpus_labels, k=10)
    assert metrics["accuracy_at_1"] == pytest.approx(1 / 3)
    assert metrics["mrr_at_10"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)


def test_no_relevant_neighbour_in_top_k_scores_zero() -> None:
    corpus = unit([1, 0], [0, 1])
    metrics = neighbour_metrics(unit([1, 0]), np.array([7]), corpus, np.array([0, 1]), k=1)
    assert metrics == {"accuracy_at_1": 0.0, "mrr_at_1": 0.0}


def test_empty_input_is_refused() -> None:
    with pytest.raises(ValueError):
        neighbour_metrics(np.zeros((0, 2)), np.array([]), unit([1, 0]), np.array([0]))
