"""Topics taught by example: a learned scorer from positive/negative example embeddings (pure code, no DB).

Two methods, chosen by measurement (``python -m evaluation topics``, Banking77 few-shot):

* ``logreg``: L2-regularised logistic regression on the L2-normalised embedding, classes balanced;
* ``prototype``: cosine to the mean positive minus cosine to the mean negative.

Three optional helpers (keyword arguments of ``train_topic`` / ``train_one_vs_rest``), all reading only the
stored 384-d search embeddings (the last two: ``topics.spreading``, with label spreading's measurements):

* ``prior``: the topic's zero-shot prototype (its name/description embedding) as one more positive;
* ``background``: unlabelled comments; each example lends its ``NEIGHBOURS`` nearest ones whose own nearest
  example has the same label, at ``NEIGHBOUR_WEIGHT`` (a cautious, one-step label propagation);
* ``spread`` (with a background): label spreading (Zhou et al., 2004) of every topic's examples and priors
  over a kNN graph of the background and those nodes (``spread_labels``); each background row takes its
  arg-max topic as a positive or negative at ``SPREAD_WEIGHT`` times its confidence (``Spreading``).

Measured before label spreading (frozen MiniLM, Banking77, mean of 3 seeds, top topic per text, macro-F1,
one-vs-rest logreg C=10). On test, with the 10,003 train texts (labels unused, never the test texts) as
background: examples only 0.835 (8 shots) / 0.875 (16 shots); with prior and background 0.852 / 0.882.
Picked on train, 8 shots drawn from 7,000 train rows (also the background), scored on the other 3,003:
examples only 0.824; + prior 0.832
(prior weight 2: 0.834, 4: 0.835; 0.835 with the other topics' priors as negatives too); + background
0.837 (neighbour weight 1: 0.835; multinomial 0.839); + both 0.838; the adapted zero-shot centroids as
priors 0.830. Earlier: C=1 0.821, C=10 0.829, C=100 0.826; ``prototype`` 0.749 / 0.771 on test. Tried and
dropped (no gain on held-out train rows): centring on the background mean, whitening (-3 to -7 points),
shrinkage LDA (0.809), self-training on pseudo-labelled background rows (+0.008 at best), ensembles with
class-mean cosines. Cost: a background adds one dense similarity pass and about 4x the rows per topic.

Also dropped: the encoder's other pooled layers (``Encoded.layers``, as the task heads read them), measured
with ``python -m evaluation.fewshot_layers`` (the same objective, all topics in one L-BFGS: it gives 0.836 /
0.876 examples only and 0.854 / 0.883 with prior and background on test for the embedding). Picked on train
(8 shots, another 7,000 / 3,003 split; the embedding 0.827, C=10): layers concatenated, each block
standardised on the background and L2-normalised, 4..6 0.801, 1..6 0.776, 5..6 0.813 (C=30 0.813, C=100
0.811); only L2-normalised 4..6 0.817 (C=30, 100: 0.817); weighted 0.25..1 over 1..6 0.807; the mean of 4..6
0.803; small weights on the lower layers (5, 6 at 0.3, 1: 0.827; 4..6 at 0.25, 0.5, 1: 0.828), the latter
with prior and background 0.842 (the embedding 0.840). On test that best set gives 0.848 / 0.884 with prior
and background (the embedding 0.854 / 0.883) and 0.836 / 0.877 examples only: no gain, and 3x the features.

Each topic's threshold is chosen by stratified k-fold cross-validation (the threshold that maximises F1
over the out-of-fold scores); the cross-validated precision and recall at that threshold come with the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nlp_service.topics.spreading import (
    NEIGHBOUR_WEIGHT,
    Neighbours,
    SpreadTopic,
    find_neighbours,
    spread_labels,
)
from nlp_service.topics.vectors import normalise

Method = Literal["logreg", "prototype"]
METHODS: tuple[Method, ...] = ("logreg", "prototype")
DEFAULT_METHOD: Method = "logreg"
DEFAULT_C = 10.0
"""Inverse L2 strength of ``logreg`` (picked on Banking77 train rows held out from the few-shot sample)."""
MIN_POSITIVES = 3
"""Below this many positive examples a topic stays zero-shot: cross-validation needs a few of them."""
MAX_FOLDS = 5
PRIOR_WEIGHT = 1.0
"""Sample weight of the topic's zero-shot prototype (name/description embedding) as one more positive."""


@dataclass(frozen=True)
class LinearScorer:
    """``score(x) = normalise(x) @ weights + bias``."""

    weights: np.ndarray
    bias: float

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        return (normalise(embeddings, np.float64) @ self.weights + self.bias).astype(np.float32)


def fit_linear(
    positives: np.ndarray,
    negatives: np.ndarray,
    *,
    method: Method = DEFAULT_METHOD,
    c: float = DEFAULT_C,
    positive_weights: np.ndarray | None = None,
    negative_weights: np.ndarray | None = None,
) -> LinearScorer:
    """Fit one topic's scorer (no threshold) from ``(n, dim)`` positive and negative embeddings.

    Optional per-row weights (default 1) let extra rows (a prior, expanded neighbours) count less.
    """
    pos, neg = normalise(positives, np.float64), normalise(negatives, np.float64)
    if pos.ndim != 2 or len(pos) == 0:
        raise ValueError("at least one positive example is needed")
    w_pos = np.ones(len(pos)) if positive_weights is None else np.asarray(positive_weights, dtype=np.float64)
    w_neg = np.ones(len(neg)) if negative_weights is None else np.asarray(negative_weights, dtype=np.float64)
    if method == "prototype":
        centre = np.average(pos, axis=0, weights=w_pos)
        away = np.average(neg, axis=0, weights=w_neg) if neg.ndim == 2 and len(neg) else np.zeros_like(centre)
        return LinearScorer(weights=centre - away, bias=0.0)
    if method != "logreg":
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if neg.ndim != 2 or len(neg) == 0:
        raise ValueError("logistic regression needs negative examples")
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(len(pos), dtype=int), np.zeros(len(neg), dtype=int)])
    weights = np.concatenate([w_pos, w_neg])
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(x, y, sample_weight=weights)
    return LinearScorer(weights=model.coef_[0].astype(np.float64), bias=float(model.intercept_[0]))


def best_threshold(scores: np.ndarray, gold: np.ndarray) -> tuple[float, float, float]:
    """The threshold maximising F1 of ``scores >= t`` against boolean ``gold``: ``(t, precision, recall)``.

    The threshold sits midway between the chosen score and the next lower one, so that it generalises.
    """
    scores, gold = np.asarray(scores, dtype=np.float64), np.asarray(gold, dtype=bool)
    if not gold.any():
        return float(scores.max(initial=0.0) + 1.0), 0.0, 0.0
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gold[order]
    tp = np.cumsum(g)
    predicted = np.arange(1, len(s) + 1)
    f1 = 2 * tp / (predicted + g.sum())
    # Only cut between distinct scores.
    valid = np.append(s[1:] < s[:-1], True)
    f1 = np.where(valid, f1, -1.0)
    i = int(np.argmax(f1))
    threshold = float(s[i] if i + 1 == len(s) else (s[i] + s[i + 1]) / 2)
    return threshold, float(tp[i] / predicted[i]), float(tp[i] / g.sum())


def _folds(n_pos: int, n_neg: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified fold index per example (positives first, then negatives)."""
    return np.concatenate([rng.permutation(np.arange(n_pos) % k), rng.permutation(np.arange(n_neg) % k)])


def _fit_augmented(
    x: np.ndarray,
    gold: np.ndarray,
    train: np.ndarray,
    *,
    prior: np.ndarray | None,
    background: np.ndarray | None,
    neighbours: Neighbours | None,
    method: Method,
    c: float,
    spread: SpreadTopic | None = None,
) -> LinearScorer:
    """Fit on the ``train`` rows of ``x`` (``gold`` marks positives) plus the prior, borrowed and
    pseudo-labelled rows."""
    pos, neg = [x[train & gold]], [x[train & ~gold]]
    w_pos, w_neg = [np.ones(len(pos[0]))], [np.ones(len(neg[0]))]
    if prior is not None:
        pos.append(np.asarray(prior, dtype=np.float64).reshape(1, -1))
        w_pos.append(np.array([PRIOR_WEIGHT]))
    if background is not None and neighbours is not None:
        rows, lent = neighbours.borrowed(gold, train)
        bg = np.asarray(background, dtype=np.float64)
        pos.append(bg[rows[lent]])
        neg.append(bg[rows[~lent]])
        w_pos.append(np.full(int(lent.sum()), NEIGHBOUR_WEIGHT))
        w_neg.append(np.full(int((~lent).sum()), NEIGHBOUR_WEIGHT))
    if spread is not None:
        rows, positive, weight = spread.rows(train)
        bg = np.asarray(spread.spreading.background, dtype=np.float64)
        pos.append(bg[rows[positive]])
        neg.append(bg[rows[~positive]])
        w_pos.append(weight[positive])
        w_neg.append(weight[~positive])
    return fit_linear(
        np.concatenate(pos),
        np.concatenate(neg),
        method=method,
        c=c,
        positive_weights=np.concatenate(w_pos),
        negative_weights=np.concatenate(w_neg),
    )


@dataclass(frozen=True)
class FewShotTopic:
    """A learned topic scorer with its cross-validated threshold and quality."""

    method: Method
    scorer: LinearScorer
    threshold: float
    cv_precision: float
    cv_recall: float
    n_positive: int
    n_negative: int

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        return self.scorer.score(embeddings)

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        return self.score(embeddings) >= self.threshold


def train_topic(
    positives: np.ndarray,
    negatives: np.ndarray,
    *,
    method: Method = DEFAULT_METHOD,
    c: float = DEFAULT_C,
    folds: int = MAX_FOLDS,
    seed: int = 0,
    prior: np.ndarray | None = None,
    background: np.ndarray | None = None,
    neighbours: Neighbours | None = None,
    spread: SpreadTopic | None = None,
) -> FewShotTopic:
    """Train one topic from example embeddings; the threshold and precision/recall come from k-fold CV.

    ``k = min(folds, positives, negatives)``; needs ``MIN_POSITIVES`` positives and at least two negatives.

    ``prior``: the topic's zero-shot prototype (``(dim,)``, e.g. ``TopicScorer.centroids[j]`` or the embedding
    of its name/description), added as one more positive of weight ``PRIOR_WEIGHT``.
    ``background``: ``(n, dim)`` embeddings of unlabelled comments (say, a sample of the stored ones); each
    example lends its ``NEIGHBOURS`` nearest rows whose own nearest example has the same label, at weight
    ``NEIGHBOUR_WEIGHT``. ``neighbours``: ``find_neighbours(concat(positives, negatives), background)`` if
    already computed. ``spread``: this topic's view of a ``spread_labels`` over all topics' examples (their
    priors as nodes too) and the background; the rows it pseudo-labels join at ``SPREAD_WEIGHT`` times their
    confidence. In CV, only the fold's training examples lend rows or spread labels and the scores are on
    held-out examples only, so the precision/recall stay honest.
    """
    pos, neg = np.asarray(positives, dtype=np.float64), np.asarray(negatives, dtype=np.float64)
    if len(pos) < MIN_POSITIVES:
        raise ValueError(f"at least {MIN_POSITIVES} positive examples are needed, got {len(pos)}")
    if len(neg) < 2:
        raise ValueError(f"at least 2 negative examples are needed, got {len(neg)}")
    k = max(2, min(folds, len(pos), len(neg)))
    fold = _folds(len(pos), len(neg), k, np.random.default_rng(seed))
    x = np.concatenate([pos, neg])
    gold = np.arange(len(x)) < len(pos)
    if background is not None and len(background) and neighbours is None:
        neighbours = find_neighbours(x, background)

    def fit(train: np.ndarray) -> LinearScorer:
        return _fit_augmented(
            x,
            gold,
            train,
            prior=prior,
            background=background,
            neighbours=neighbours,
            method=method,
            c=c,
            spread=spread,
        )

    oof = np.zeros(len(x))
    for f in range(k):
        held = fold == f
        oof[held] = fit(~held).score(x[held])
    threshold, precision, recall = best_threshold(oof, gold)
    final = fit(np.ones(len(x), dtype=bool))
    return FewShotTopic(method, final, threshold, precision, recall, len(pos), len(neg))


def train_one_vs_rest(
    embeddings: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    n_topics: int,
    *,
    method: Method = DEFAULT_METHOD,
    c: float = DEFAULT_C,
    cross_validate: bool = False,
    seed: int = 0,
    priors: np.ndarray | None = None,
    background: np.ndarray | None = None,
) -> list[FewShotTopic]:
    """One topic per label, its positives against every other label's examples (for multi-class evaluation).

    Each topic is fitted as ``train_topic`` fits it (``priors[t]`` as its prior, the same ``background``),
    with the neighbours searched once; with a background, the labels of the examples and priors are spread
    over it once (``spread_labels``) and each topic takes its ``SpreadTopic``. With ``cross_validate=False``
    the thresholds are left at 0 and precision/recall at NaN (top-1 use only).
    """
    x, y = np.asarray(embeddings, dtype=np.float64), np.asarray(labels)
    bg = background if background is not None and len(background) else None
    shared = None if bg is None else find_neighbours(x, bg)
    spreading = None
    if bg is not None:
        nodes, membership = x, np.eye(n_topics)[y]
        if priors is not None:
            nodes = np.concatenate([x, np.asarray(priors, dtype=np.float64)])
            membership = np.concatenate([membership, np.eye(n_topics)])
        spreading = spread_labels(nodes, membership, bg)
    out = []
    for topic in range(n_topics):
        gold = y == topic
        order = np.concatenate([np.flatnonzero(gold), np.flatnonzero(~gold)])  # positives first
        neighbours = None
        if shared is not None:
            rank = np.empty(len(x), dtype=np.int64)
            rank[order] = np.arange(len(x))
            neighbours = Neighbours(nearest_rows=shared.nearest_rows[order], owner=rank[shared.owner])
        prior = None if priors is None else priors[topic]
        spread = None if spreading is None else SpreadTopic(spreading, topic, order)
        if cross_validate:
            topic_model = train_topic(
                x[gold],
                x[~gold],
                method=method,
                c=c,
                seed=seed,
                prior=prior,
                background=bg,
                neighbours=neighbours,
                spread=spread,
            )
        else:
            everything = np.ones(len(x), dtype=bool)
            scorer = _fit_augmented(
                x[order],
                gold[order],
                everything,
                prior=prior,
                background=bg,
                neighbours=neighbours,
                method=method,
                c=c,
                spread=spread,
            )
            n_pos = int(gold.sum())
            topic_model = FewShotTopic(method, scorer, 0.0, float("nan"), float("nan"), n_pos, len(x) - n_pos)
        out.append(topic_model)
    return out


def score_matrix(topics: Sequence[FewShotTopic], embeddings: np.ndarray) -> np.ndarray:
    """``(n, n_topics)`` scores, one column per topic (top topic per text: ``argmax(axis=1)``)."""
    weights = np.stack([t.scorer.weights for t in topics], axis=1)
    bias = np.array([t.scorer.bias for t in topics])
    return (normalise(embeddings, np.float64) @ weights + bias).astype(np.float32)
