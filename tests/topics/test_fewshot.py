"""Few-shot topic scorers on small synthetic embeddings (no model, no dataset)."""

from __future__ import annotations

import numpy as np
import pytest

from nlp_service.topics import spreading as spreading_module
from nlp_service.topics.fewshot import (
    METHODS,
    best_threshold,
    score_matrix,
    train_one_vs_rest,
    train_topic,
)
from nlp_service.topics.spreading import SpreadTopic, find_neighbours, spread_labels


def _blobs(n_per: int, n_topics: int, dim: int = 16, spread: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_topics, dim))
    y = np.repeat(np.arange(n_topics), n_per)
    x = centres[y] + spread * rng.normal(size=(len(y), dim))
    return x, y


@pytest.mark.parametrize("method", METHODS)
def test_separable_topic_is_learned_with_cv_precision_recall(method):
    x, y = _blobs(20, 4)
    topic = train_topic(x[y == 0], x[y != 0], method=method, seed=0)
    assert topic.method == method
    assert 0.0 <= topic.cv_precision <= 1.0 and 0.0 <= topic.cv_recall <= 1.0
    assert topic.cv_precision >= 0.9 and topic.cv_recall >= 0.9
    x_new, y_new = _blobs(10, 4, seed=0)
    predicted = topic.predict(x_new)
    assert predicted[y_new == 0].mean() >= 0.9
    assert predicted[y_new != 0].mean() <= 0.1


@pytest.mark.parametrize("method", METHODS)
def test_overlapping_topic_reports_imperfect_cv(method):
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(size=(12, 8)), rng.normal(size=(30, 8))  # same distribution: nothing to learn
    topic = train_topic(pos, neg, method=method)
    assert 0.0 <= topic.cv_precision <= 1.0 and 0.0 <= topic.cv_recall <= 1.0
    assert min(topic.cv_precision, topic.cv_recall) < 0.9


def test_training_is_deterministic_with_a_seed():
    x, y = _blobs(10, 3, spread=1.5, seed=3)
    a = train_topic(x[y == 0], x[y != 0], seed=7)
    b = train_topic(x[y == 0], x[y != 0], seed=7)
    assert a.threshold == b.threshold and a.cv_precision == b.cv_precision
    np.testing.assert_array_equal(a.scorer.weights, b.scorer.weights)


def test_too_few_examples_are_refused():
    x, y = _blobs(5, 2)
    with pytest.raises(ValueError, match="positive"):
        train_topic(x[:2], x[5:])
    with pytest.raises(ValueError, match="negative"):
        train_topic(x[:5], x[5:6])


@pytest.mark.parametrize("method", METHODS)
def test_one_vs_rest_top_topic(method):
    x, y = _blobs(8, 5)
    topics = train_one_vs_rest(x, y, 5, method=method)
    x_test, y_test = _blobs(6, 5, seed=0)
    scores = score_matrix(topics, x_test)
    assert scores.shape == (30, 5)
    assert (scores.argmax(axis=1) == y_test).mean() >= 0.95


def test_best_threshold_maximises_f1():
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    gold = np.array([True, True, False, False, False])
    t, precision, recall = best_threshold(scores, gold)
    assert 0.7 < t < 0.8 and precision == 1.0 and recall == 1.0
    t, precision, recall = best_threshold(scores, np.zeros(5, dtype=bool))
    assert (scores >= t).sum() == 0 and precision == recall == 0.0


def test_adapted_prototypes_move_towards_the_texts_they_claim():
    from nlp_service.topics.scorer import adapt_prototypes

    x, y = _blobs(20, 3, spread=0.2, seed=4)
    centres = np.stack([x[y == t].mean(axis=0) for t in range(3)])
    rng = np.random.default_rng(0)
    rough = centres + 1.5 * rng.normal(size=centres.shape)  # poor zero-shot prototypes
    norm = np.linalg.norm
    before = [float(rough[t] @ centres[t] / norm(rough[t]) / norm(centres[t])) for t in range(3)]
    adapted = adapt_prototypes(rough, x, weight=1.0, iterations=3)
    assert adapted.shape == rough.shape
    np.testing.assert_allclose(norm(adapted, axis=1), 1.0, rtol=1e-5)
    after = [float(adapted[t] @ centres[t] / norm(centres[t])) for t in range(3)]
    assert all(a > b for a, b in zip(after, before, strict=True))


def test_neighbours_are_borrowed_only_where_the_nearest_example_agrees():
    examples = np.array([[1.0, 0.0], [0.0, 1.0]])
    labels = np.array([0, 1])
    background = np.array([[1.0, 0.1], [0.9, 0.2], [0.1, 1.0], [0.6, 0.5]])
    neighbours = find_neighbours(examples, background, k=3)
    assert neighbours.nearest_rows.shape == (2, 3)
    assert neighbours.nearest_rows[0, 0] == 0 and neighbours.nearest_rows[1, 0] == 2
    np.testing.assert_array_equal(neighbours.owner, [0, 0, 1, 0])
    rows, lent = neighbours.borrowed(labels)
    # Row 3 is among example 1's three nearest, but its own nearest example is example 0 (label 0).
    assert dict(zip(rows.tolist(), lent.tolist(), strict=True)) == {0: 0, 1: 0, 2: 1, 3: 0}
    # With example 0 held out, rows whose nearest example is example 0 are lent by nobody.
    rows, lent = neighbours.borrowed(labels, np.array([False, True]))
    assert rows.tolist() == [2] and lent.tolist() == [1]


def test_find_neighbours_matches_a_dense_search_across_chunks():
    rng = np.random.default_rng(5)
    examples, background = rng.normal(size=(7, 8)), rng.normal(size=(9000, 8))  # more than one chunk
    neighbours = find_neighbours(examples, background, k=4)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    sim = unit(examples) @ unit(background).T
    np.testing.assert_array_equal(neighbours.nearest_rows, np.argsort(-sim, axis=1)[:, :4])
    np.testing.assert_array_equal(neighbours.owner, sim.argmax(axis=0))


def _noisy_few_shot(seed: int, n_topics: int = 5, dim: int = 32):
    """3 very noisy examples per topic; unlabelled comments and test texts close to the true centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_topics, dim))
    y = np.repeat(np.arange(n_topics), 3)
    x = centres[y] + 3.0 * rng.normal(size=(len(y), dim))
    background = np.concatenate([c + rng.normal(size=(100, dim)) for c in centres])
    y_test = np.repeat(np.arange(n_topics), 100)
    x_test = centres[y_test] + rng.normal(size=(len(y_test), dim))
    return centres, x, y, background, x_test, y_test


def test_prior_and_background_help_when_examples_are_few_and_noisy():
    accuracy: dict[str, list[float]] = {"plain": [], "prior": [], "background": []}
    for seed in range(6):
        centres, x, y, background, x_test, y_test = _noisy_few_shot(seed)
        options = {"plain": {}, "prior": {"priors": centres}, "background": {"background": background}}
        for name, extra in options.items():
            topics = train_one_vs_rest(x, y, 5, **extra)
            accuracy[name].append(float((score_matrix(topics, x_test).argmax(axis=1) == y_test).mean()))
    mean = {name: float(np.mean(values)) for name, values in accuracy.items()}
    assert mean["prior"] > mean["plain"] + 0.1
    assert mean["background"] > mean["plain"] + 0.03
    assert all(t.n_positive == 3 and t.n_negative == 12 for t in topics)  # borrowed rows are not examples


def test_one_vs_rest_with_background_matches_train_topic():
    x, y = _blobs(6, 3, spread=0.8, seed=6)
    background, _ = _blobs(30, 3, spread=0.8, seed=7)
    priors = np.stack([x[y == t].mean(axis=0) for t in range(3)])
    joint = train_one_vs_rest(x, y, 3, priors=priors, background=background, cross_validate=True, seed=1)
    spreading = spread_labels(
        np.concatenate([x, priors]), np.eye(3)[np.concatenate([y, [0, 1, 2]])], background
    )
    order = np.concatenate([np.flatnonzero(y == 1), np.flatnonzero(y != 1)])
    spread = SpreadTopic(spreading, 1, order)
    alone = train_topic(x[y == 1], x[y != 1], prior=priors[1], background=background, seed=1, spread=spread)
    np.testing.assert_allclose(joint[1].scorer.weights, alone.scorer.weights, rtol=1e-6, atol=1e-9)
    assert joint[1].threshold == pytest.approx(alone.threshold)
    fast = train_one_vs_rest(x, y, 3, priors=priors, background=background)
    np.testing.assert_allclose(fast[1].scorer.weights, alone.scorer.weights, rtol=1e-6, atol=1e-9)


def test_spread_labels_follow_the_graph_and_leave_held_out_nodes_out():
    # Two well separated groups of background rows, one labelled node in each, and one far-away row.
    rng = np.random.default_rng(3)
    a, b = np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0, 0.0])
    noise = np.zeros((24, 4))
    noise[:, :3] = 0.05 * rng.normal(size=(24, 3))
    background = np.concatenate([a + noise[:12], b + noise[12:], [[0.0, 0.0, 0.0, 1.0]]])
    spreading = spread_labels(np.stack([a, b]), np.eye(2), background, k=3)
    label, confidence = spreading.pseudo_labels()
    assert label[:12].tolist() == [0] * 12 and label[12:24].tolist() == [1] * 12
    assert confidence[:24].min() > 0.5 and confidence[24] == 0.0  # no label reaches the lone row
    rows, positive, weight = spreading.rows(0)
    assert rows.tolist() == list(range(24)) and positive.tolist() == [True] * 12 + [False] * 12
    np.testing.assert_allclose(weight, spreading_module.SPREAD_WEIGHT * confidence[:24])
    # The second node held out (a CV fold): its group gets no negative evidence from it any more.
    rows, positive, _ = SpreadTopic(spreading, 0, np.array([0, 1])).rows(np.array([True, False]))
    assert positive.all()
    rows, _, _ = spreading.rows(0, negative_topics=np.array([False, False]))
    assert rows.tolist() == list(range(12))


def test_a_topic_keeps_only_its_hardest_pseudo_labelled_negatives(monkeypatch):
    # Topic 1's rows from near topic 0 (x0 from 0.9 down to 0.2) to far; topic 0 keeps the 5 nearest of them.
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    x0 = np.linspace(0.9, 0.2, 12)
    near_b = np.stack([x0, np.sqrt(1 - x0**2), np.zeros(12)], axis=1)
    background = np.concatenate([a + 0.01 * np.arange(6)[:, None] * np.array([0, 0, 1.0]), near_b])
    spreading = spread_labels(np.stack([a, b]), np.eye(2), background, k=3)
    label, _ = spreading.pseudo_labels()
    all_rows, positive, _ = spreading.rows(0)
    negatives = all_rows[~positive]
    assert len(negatives) > 5 and (label[negatives] == 1).all()
    monkeypatch.setattr(spreading_module, "SPREAD_NEGATIVES", 5)
    rows, positive, weight = spreading.rows(0)
    kept = rows[~positive]
    assert len(kept) == 5 and rows[positive].tolist() == all_rows[all_rows < 6].tolist()
    _, _, p = spreading._labels(None)
    assert p[kept, 0].min() >= np.delete(p[:, 0], np.concatenate([kept, rows[positive]])).max()
    assert len(weight) == len(rows)


def test_label_spreading_helps_when_examples_are_few_and_noisy(monkeypatch):
    accuracy: dict[float, list[float]] = {0.0: [], spreading_module.SPREAD_WEIGHT: []}
    for weight in accuracy:
        monkeypatch.setattr(spreading_module, "SPREAD_WEIGHT", weight)
        for seed in range(6):
            centres, x, y, background, x_test, y_test = _noisy_few_shot(seed)
            topics = train_one_vs_rest(x, y, 5, priors=centres, background=background)
            accuracy[weight].append(float((score_matrix(topics, x_test).argmax(axis=1) == y_test).mean()))
    without, with_ = (float(np.mean(v)) for v in accuracy.values())
    assert with_ > without + 0.02
