"""Topics taught by example: a learned scorer from positive/negative example embeddings (pure code, no DB).

Two methods, chosen by measurement (``python -m evaluation topics``, Banking77 few-shot):

* ``logreg``: L2-regularised logistic regression on the L2-normalised embedding, classes balanced;
* ``prototype``: cosine to the mean positive minus cosine to the mean negative.

Three optional helpers (keyword arguments of ``train_topic`` / ``train_one_vs_rest``), all reading only the
stored 384-d search embeddings:

* ``prior``: the topic's zero-shot prototype (its name/description embedding) as one more positive;
* ``background``: unlabelled comments; each example lends its ``NEIGHBOURS`` nearest ones whose own nearest
  example has the same label, at ``NEIGHBOUR_WEIGHT`` (a cautious, one-step label propagation);
* ``spread`` (with a background): label spreading (Zhou et al., 2004) of every topic's examples and priors
  over a kNN graph of the background and those nodes (``spread_labels``); each background row takes its
  arg-max topic as a positive or negative at ``SPREAD_WEIGHT`` times its confidence (``Spreading``).

Label spreading, measured 2026-12-04 (same protocol as below; picked on train, 8 shots from 7,000 train rows,
scored on the other 3,003, prior and background on, C=10, all topics fitted in one L-BFGS problem of the
same objective; before 0.840 / 16 shots 0.878): pseudo-labelled
rows at weight 1 x confidence, k=10, cos^3 edges, alpha 0.99: 0.840; weight 0.3: 0.847; alpha 0.9: 0.846,
with weight 0.3: 0.850, 0.1: 0.851 (unweighted by confidence 0.851); alpha 0.7: 0.846; k=5: 0.840; k=20:
0.833; soft targets 0.841; the 50% most confident rows only 0.839; without the borrowed neighbours 0.835;
the priors as labelled nodes too (kept): weight 0.3 0.854 / 16 shots 0.885. Through ``train_one_vs_rest``:
0.853 / 0.883 on those rows; on test 0.862 / 0.893 (seeds 0.8585, 0.8677, 0.8587 / 0.8948, 0.8942,
0.8907), was 0.852 / 0.882. Cost: one kNN graph and 40 sparse rounds (5 s for 10,000 rows and 693 nodes),
then up to the whole background per topic as extra rows: 42 s for 77 topics without CV; with
``train_topic``'s CV (each fold spreads only its training examples' labels, exactly, from ``diffusion``)
294 s for 77 topics at 8 shots over 10,000 rows (the service samples 5,000).

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
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

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
NEIGHBOURS = 5
"""Background rows borrowed per example: its nearest ones whose own nearest example has the same label."""
NEIGHBOUR_WEIGHT = 0.5
"""Sample weight of a borrowed background row."""
SPREAD_NEIGHBOURS = 10
"""Degree of the kNN graph of label spreading (over the background rows and the labelled nodes)."""
SPREAD_ALPHA = 0.9
"""Label spreading's alpha: the share of a node's label mass that comes from its graph neighbours."""
SPREAD_GAMMA = 3.0
"""Edge weight of the graph: cosine similarity (clipped at 0) to this power."""
SPREAD_ITERATIONS = 40
SPREAD_WEIGHT = 0.3
"""Sample weight of a pseudo-labelled background row, times its confidence ``1 - entropy / log(topics)``."""
SPREAD_NEGATIVES = 1000
"""Pseudo-labelled negatives a topic's fit keeps at most: those its own label reaches most (the hardest); the
rest, far from the topic, only slow the fit (many taught topics x CV folds) without moving its boundary."""


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class LinearScorer:
    """``score(x) = normalise(x) @ weights + bias``."""

    weights: np.ndarray
    bias: float

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        return (_normalise(embeddings) @ self.weights + self.bias).astype(np.float32)


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
    pos, neg = _normalise(positives), _normalise(negatives)
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


@dataclass(frozen=True)
class Neighbours:
    """Each example's nearest unlabelled background rows, and each row's nearest example."""

    nearest_rows: np.ndarray
    """``(n_examples, k)`` background row indexes, nearest first."""
    owner: np.ndarray
    """``(n_background,)`` index of each row's nearest example."""

    def borrowed(
        self, labels: np.ndarray, examples: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, labels)``: the background rows near an example whose nearest example has the same label.

        ``examples`` (a boolean mask or indexes) restricts both roles to some examples (a CV fold's training
        part); a row's owner is then its nearest example among them only if that is also its nearest overall,
        so a held-out example never lends its neighbours. A row borrowed by several labels keeps the first.
        """
        labels = np.asarray(labels)
        use = np.ones(len(labels), dtype=bool)
        if examples is not None:
            use = np.zeros(len(labels), dtype=bool)
            use[examples] = True
        rows = self.nearest_rows[use].ravel()
        lent = np.repeat(labels[use], self.nearest_rows.shape[1])
        owner = self.owner[rows]
        keep = use[owner] & (labels[owner] == lent)
        rows, lent = rows[keep], lent[keep]
        rows, first = np.unique(rows, return_index=True)
        return rows, lent[first]


def find_neighbours(examples: np.ndarray, background: np.ndarray, *, k: int = NEIGHBOURS) -> Neighbours:
    """Cosine nearest background rows of each example, and nearest example of each row (dense, in chunks)."""
    ex, bg = _normalise(examples).astype(np.float32), _normalise(background).astype(np.float32)
    k = min(k, len(bg))
    owner = np.empty(len(bg), dtype=np.int64)
    best = np.full((len(ex), k), -np.inf, dtype=np.float32)
    index = np.zeros((len(ex), k), dtype=np.int64)
    for start in range(0, len(bg), 4096):
        sim = ex @ bg[start : start + 4096].T  # (n_examples, chunk)
        owner[start : start + sim.shape[1]] = sim.argmax(axis=0)
        merged = np.concatenate([best, sim], axis=1)
        ids = np.concatenate(
            [index, np.arange(start, start + sim.shape[1])[None, :].repeat(len(ex), 0)], axis=1
        )
        top = np.argsort(-merged, axis=1, kind="stable")[:, :k]
        best, index = np.take_along_axis(merged, top, 1), np.take_along_axis(ids, top, 1)
    return Neighbours(nearest_rows=index, owner=owner)


def _knn_graph(nodes: np.ndarray, k: int, gamma: float) -> sp.csr_matrix:
    """``D^-1/2 W D^-1/2`` of the symmetrised cosine kNN graph, ``W = max(cos, 0)^gamma``."""
    import scipy.sparse as sp  # noqa: F811

    x = _normalise(nodes).astype(np.float32)
    n, k = len(x), min(k, len(x) - 1)
    index = np.zeros((n, k), dtype=np.int64)
    value = np.zeros((n, k), dtype=np.float32)
    for start in range(0, n, 2048):
        sim = x[start : start + 2048] @ x.T
        sim[np.arange(len(sim)), np.arange(start, start + len(sim))] = -np.inf  # no self-loops
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        index[start : start + len(sim)], value[start : start + len(sim)] = (
            top,
            np.take_along_axis(sim, top, 1),
        )
    w = sp.csr_matrix(
        (np.maximum(value, 0).ravel() ** gamma, (np.repeat(np.arange(n), k), index.ravel())), (n, n)
    )
    w = (w + w.T).tocsr()
    d = 1.0 / np.sqrt(np.maximum(np.asarray(w.sum(axis=1)).ravel(), 1e-12))
    return sp.csr_matrix(sp.diags(d) @ w @ sp.diags(d))


@dataclass(frozen=True)
class Spreading:
    """Label spreading (Zhou et al., 2004) of labelled nodes (examples, priors) over the background rows.

    ``diffusion[i, j]``: how much node ``j``'s label reaches background row ``i`` (``(I - alpha S)^-1`` on the
    kNN graph of background rows and nodes). Spreading is linear in the labels, so the labels of any subset of
    the nodes (a CV fold's training part) spread as ``diffusion[:, use] @ membership[use]``.
    """

    background: np.ndarray
    """``(n_background, dim)``."""
    diffusion: np.ndarray
    """``(n_background, n_nodes)``."""
    membership: np.ndarray
    """``(n_nodes, n_topics)``: 1 where a node is labelled with a topic."""

    def pseudo_labels(self, use: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(topic, confidence)`` per background row from the nodes in ``use`` (boolean mask; default all).

        Each topic's spread mass is normalised to sum 1 (topics with more examples do not dominate); the
        confidence is ``1 - entropy / log(topics with mass)`` of a row's normalised masses, 0 for a row the
        labels never reach."""
        label, confidence, _ = self._labels(use)
        return label, confidence

    def _labels(self, use: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``pseudo_labels`` and each row's distribution over the topics (``(n_background, n_topics)``)."""
        d, m = (
            (self.diffusion, self.membership)
            if use is None
            else (self.diffusion[:, use], self.membership[use])
        )
        f = np.maximum(d @ m.astype(d.dtype), 0).astype(np.float64)
        mass = f.sum(axis=0)
        f = f / np.maximum(mass, 1e-300)
        total = f.sum(axis=1, keepdims=True)
        p = f / np.maximum(total, 1e-300)
        entropy = -(p * np.log(np.maximum(p, 1e-300))).sum(axis=1)
        confidence = 1.0 - entropy / np.log(max(int((mass > 0).sum()), 2))
        return p.argmax(axis=1), np.where(total[:, 0] > 0, confidence, 0.0), p

    @cached_property
    def _all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._labels(None)

    def rows(
        self, topic: int, use: np.ndarray | None = None, negative_topics: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, positive, weight)``: background rows pseudo-labelled ``topic`` (positives) or one of
        ``negative_topics`` (boolean per topic; default every other topic; at most ``SPREAD_NEGATIVES`` of
        them, those with the most of ``topic``'s mass), weighted ``SPREAD_WEIGHT * confidence``."""
        label, confidence, p = self._all if use is None or use.all() else self._labels(use)
        negative = (
            np.arange(self.membership.shape[1]) != topic if negative_topics is None else negative_topics
        )
        reached = confidence > 0
        positives = np.flatnonzero((label == topic) & reached)
        negatives = np.flatnonzero(negative[label] & (label != topic) & reached)
        if len(negatives) > SPREAD_NEGATIVES:
            hardest = np.argsort(-p[negatives, topic], kind="stable")[:SPREAD_NEGATIVES]
            negatives = np.sort(negatives[hardest])
        rows = np.sort(np.concatenate([positives, negatives]))
        return rows, label[rows] == topic, SPREAD_WEIGHT * confidence[rows]


def spread_labels(
    nodes: np.ndarray,
    membership: np.ndarray,
    background: np.ndarray,
    *,
    k: int = SPREAD_NEIGHBOURS,
    alpha: float = SPREAD_ALPHA,
    gamma: float = SPREAD_GAMMA,
    iterations: int = SPREAD_ITERATIONS,
) -> Spreading:
    """Spread the labels of ``nodes`` (``(n, dim)`` embeddings, ``membership`` ``(n, n_topics)``) over
    ``background`` (``(m, dim)``): ``iterations`` rounds of ``Z <- alpha S Z + E`` on their kNN graph."""
    bg = np.asarray(background, dtype=np.float32)
    s = _knn_graph(np.concatenate([bg, np.asarray(nodes, dtype=np.float32)]), k, gamma).astype(np.float32)
    n = len(nodes)
    seed = np.zeros((len(bg) + n, n), dtype=np.float32)
    seed[len(bg) + np.arange(n), np.arange(n)] = 1.0
    z = seed.copy()
    for _ in range(iterations):
        z = alpha * (s @ z) + seed
    return Spreading(
        background=bg, diffusion=np.ascontiguousarray(z[: len(bg)]), membership=np.asarray(membership)
    )


@dataclass(frozen=True)
class SpreadTopic:
    """One topic's view of a ``Spreading``: its column, and the node of each of its example rows."""

    spreading: Spreading
    topic: int
    nodes: np.ndarray
    """``(n_positive + n_negative,)`` node index of each example row (positives first), -1 where none."""
    negative_topics: np.ndarray | None = None
    """Boolean per topic: pseudo-labels that count as negatives (default: every other topic)."""

    def rows(self, train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Spreading.rows`` with the nodes of the example rows outside ``train`` left out."""
        held = self.nodes[~train]
        use = np.ones(len(self.spreading.membership), dtype=bool)
        use[held[held >= 0]] = False
        return self.spreading.rows(self.topic, use, self.negative_topics)


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
    return (_normalise(embeddings) @ weights + bias).astype(np.float32)
