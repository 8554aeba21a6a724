"""Few-shot topics on Banking77 from the encoder's pooled layers (1..6) instead of the final embedding alone.

    python -m evaluation.fewshot_layers --data ../shared/datasets --select   # choose on held-out train rows
    python -m evaluation.fewshot_layers --data ../shared/datasets --test     # the same sets, scored on test

A measurement, not a service path: it asks whether the few-shot scorer of ``nlp_service.topics.fewshot``
(one-vs-rest logistic regression, optional prior and background) does better on features built from several
of the encoder's mean-pooled hidden layers (``Encoded.layers``), as the task heads read them.

Feature sets (``FEATURE_SETS``): ``emb`` is the stored search embedding (the mean of layer 6, L2-normalised);
``L4-6`` etc. concatenate layers, each block centred and scaled per dimension with statistics of the
unlabelled background (``std``) or only L2-normalised (``raw``), then L2-normalised per block and weighted.

Protocol, as ``evaluation/topics_suite.py``: 8 / 16 shots per topic (seeds 0, 1, 2), top topic per text,
macro-F1. ``--select``: shots drawn from 7,000 train rows (also the background), scored on the other 3,003
train rows. ``--test``: shots from all train rows (also the background), scored on the test split.
Features come from the feature cache (``var/cache`` or ``--cache-dir``). ``--solver fast`` fits the same
objective (balanced L2 logistic regression per topic, prior and borrowed rows) for all topics in one L-BFGS
problem; on test it gives 0.836 / 0.876 (examples only) and 0.854 / 0.883 (prior + background) for ``emb``,
``train_one_vs_rest`` 0.835 / 0.875 and 0.852 / 0.882.

Result (2026-12-04, frozen MiniLM; the figures are in ``nlp_service/topics/fewshot.py``'s docstring): no
layer set beats the embedding. Commands (``--solver fast --cache-dir /tmp/fewshot/cache``)::

    --select --shots 8 --sets emb,L6std,L4-6,L1-6,L4-6raw,L1-6w,L5-6,L3-6
    --select --shots 8 --sets L5-6,L4-6raw,L1-6w,emb --c 30,100
    --select --shots 8 --sets L5-6raw.3,L4-6raw.w,avg4-6
    --select --shots 8 --sets emb,L4-6raw.w --help-with prior+bg
    --test --sets L4-6raw.w --help-with prior+bg,none
    --test --sets emb --help-with none,prior+bg
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.topics_suite import SEEDS, SHOTS, few_shot_sample, name_of
from nlp_service.inference.encoder import Encoder
from nlp_service.topics.fewshot import DEFAULT_C, PRIOR_WEIGHT, score_matrix, train_one_vs_rest
from nlp_service.topics.spreading import NEIGHBOUR_WEIGHT, find_neighbours
from training import datasets as ds
from training.cache import FeatureCache, add_encoder_arguments
from training.metrics import macro_f1

log = logging.getLogger(__name__)

SELECT_POOL = 7000
SELECT_SEED = 0


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class FeatureSet:
    """Blocks of pooled layers, each standardised (or not), L2-normalised and weighted, concatenated."""

    layers: tuple[int, ...]
    weights: tuple[float, ...] | None = None
    standardise: bool = True
    average: bool = False
    """Sum the blocks (one ``dim``-wide vector) instead of concatenating them."""

    def build(self, layers: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """``(n, 7, dim)`` pooled layers -> ``(n, len(layers) * dim)``; statistics from ``reference``."""
        weights = self.weights or (1.0,) * len(self.layers)
        blocks = []
        for layer, weight in zip(self.layers, weights, strict=True):
            x = layers[:, layer].astype(np.float64)
            if self.standardise:
                ref = reference[:, layer].astype(np.float64)
                x = (x - ref.mean(axis=0)) / np.maximum(ref.std(axis=0), 1e-6)
            blocks.append(weight * _l2(x))
        return np.sum(blocks, axis=0) if self.average else np.concatenate(blocks, axis=1)


FEATURE_SETS: dict[str, FeatureSet | None] = {
    "emb": None,  # the stored search embedding
    "L6std": FeatureSet((6,)),
    "L5-6": FeatureSet((5, 6)),
    "L4-6": FeatureSet((4, 5, 6)),
    "L3-6": FeatureSet((3, 4, 5, 6)),
    "L1-6": FeatureSet((1, 2, 3, 4, 5, 6)),
    "L4-6raw": FeatureSet((4, 5, 6), standardise=False),
    "L1-6raw": FeatureSet((1, 2, 3, 4, 5, 6), standardise=False),
    "L4-6w": FeatureSet((4, 5, 6), (0.5, 0.75, 1.0)),
    "L1-6w": FeatureSet((1, 2, 3, 4, 5, 6), (0.25, 0.4, 0.55, 0.7, 0.85, 1.0)),
    "L5-6raw.3": FeatureSet((5, 6), (0.3, 1.0), standardise=False),
    "L4-6raw.w": FeatureSet((4, 5, 6), (0.25, 0.5, 1.0), standardise=False),
    "avg4-6": FeatureSet((4, 5, 6), standardise=False, average=True),
}


@dataclass
class Split:
    layers: np.ndarray
    embedding: np.ndarray
    labels: np.ndarray


def features(name: str, split: Split, reference: Split) -> np.ndarray:
    spec = FEATURE_SETS[name]
    return split.embedding.astype(np.float64) if spec is None else spec.build(split.layers, reference.layers)


def fast_one_vs_rest(
    x: np.ndarray,
    y: np.ndarray,
    n_topics: int,
    *,
    c: float,
    priors: np.ndarray | None,
    background: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``train_one_vs_rest``'s fit (balanced L2 logreg per topic, prior, borrowed rows), all topics in one
    L-BFGS problem: ``(weights (dim, n_topics), bias (n_topics,))``. For grids only (``--solver fast``)."""
    from scipy.optimize import minimize

    x = _l2(np.asarray(x, dtype=np.float64))
    n, dim = x.shape
    rows = [x]
    target = [y[:, None] == np.arange(n_topics)[None, :]]
    weight = [np.ones((n, n_topics))]
    if priors is not None:
        rows.append(_l2(np.asarray(priors, dtype=np.float64)))
        target.append(np.eye(n_topics, dtype=bool))
        weight.append(np.eye(n_topics) * PRIOR_WEIGHT)
    if background is not None:
        bg = _l2(np.asarray(background, dtype=np.float64))
        shared = find_neighbours(x, bg)
        lent_rows = np.unique(shared.nearest_rows)
        where = {r: i for i, r in enumerate(lent_rows.tolist())}
        t_bg = np.zeros((len(lent_rows), n_topics), dtype=bool)
        w_bg = np.zeros((len(lent_rows), n_topics))
        for topic in range(n_topics):
            borrowed, lent = shared.borrowed(y == topic)
            index = [where[r] for r in borrowed.tolist()]
            t_bg[index, topic] = lent
            w_bg[index, topic] = NEIGHBOUR_WEIGHT
        rows.append(bg[lent_rows])
        target.append(t_bg)
        weight.append(w_bg)
    a = np.concatenate(rows).astype(np.float32)
    t, w = np.concatenate(target).astype(np.float32), np.concatenate(weight).astype(np.float32)
    # class_weight="balanced" with sample weights: total / (2 * class total), per topic
    total = w.sum(axis=0)
    pos = (w * t).sum(axis=0)
    s = w * np.where(t > 0, total / (2 * pos), total / (2 * (total - pos))) * c

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        coef = theta[: dim * n_topics].reshape(dim, n_topics).astype(np.float32)
        bias = theta[dim * n_topics :].astype(np.float32)
        z = a @ coef + bias
        loss = np.logaddexp(0, z) - t * z
        p = 0.5 * (1 + np.tanh(0.5 * z))
        g = s * (p - t)
        value = float((s * loss).sum(dtype=np.float64) + 0.5 * (coef * coef).sum(dtype=np.float64))
        grad = np.concatenate([(a.T @ g + coef).ravel(), g.sum(axis=0)]).astype(np.float64)
        return value, grad

    theta = np.zeros(dim * n_topics + n_topics)
    found = minimize(objective, theta, jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-6})
    return found.x[: dim * n_topics].reshape(dim, n_topics), found.x[dim * n_topics :]


def few_shot_scores(
    x_pool: np.ndarray,
    y_pool: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    n_topics: int,
    shots: int,
    *,
    c: float,
    priors: np.ndarray | None,
    background: np.ndarray | None,
    fast: bool = False,
) -> list[float]:
    """Macro-F1 per seed: ``shots`` per topic drawn from the pool, scored on the evaluation rows."""
    out = []
    for seed in SEEDS:
        rows = few_shot_sample(y_pool, n_topics, shots, seed)
        if fast:
            coef, bias = fast_one_vs_rest(
                x_pool[rows], y_pool[rows], n_topics, c=c, priors=priors, background=background
            )
            scores = _l2(x_eval) @ coef + bias
        else:
            topics = train_one_vs_rest(
                x_pool[rows], y_pool[rows], n_topics, c=c, priors=priors, background=background
            )
            scores = score_matrix(topics, x_eval)
        out.append(macro_f1(y_eval, scores.argmax(axis=1), n_topics))
    return out


def load(data_dir: Path, cache: FeatureCache) -> tuple[Split, Split, Split, list[str]]:
    """Train, test and the 77 names (as texts), encoded through the cache."""

    def encode(texts: list[str], labels: Sequence[int]) -> Split:
        enc = cache.encode(texts, progress=False)
        return Split(enc.layers, enc.embedding, np.asarray(labels))

    train, names = ds.banking77(data_dir, "train")
    test, _ = ds.banking77(data_dir, "test")
    label_names = [name_of(n) for n in names]
    return (
        encode(train.texts, train.labels),
        encode(test.texts, test.labels),
        encode(label_names, range(len(names))),
        names,
    )


def run_grid(
    pool: Split,
    evaluation: Split,
    names: Split,
    sets: list[str],
    cs: list[float],
    helps: list[str],
    shots: Sequence[int],
    emit: Callable[[dict[str, object]], None],
    *,
    fast: bool = False,
) -> None:
    n_topics = int(names.labels.max()) + 1
    for name in sets:
        x_pool, x_eval = features(name, pool, pool), features(name, evaluation, pool)
        x_names = features(name, names, pool)
        for help_ in helps:
            priors = x_names if "prior" in help_ else None
            background = x_pool if "bg" in help_ else None
            for c in cs:
                for k in shots:
                    started = time.perf_counter()
                    scores = few_shot_scores(
                        x_pool,
                        pool.labels,
                        x_eval,
                        evaluation.labels,
                        n_topics,
                        k,
                        c=c,
                        priors=priors,
                        background=background,
                        fast=fast,
                    )
                    emit(
                        {
                            "features": name,
                            "help": help_,
                            "c": c,
                            "solver": "fast" if fast else "sklearn",
                            "shots": k,
                            "macro_f1": round(float(np.mean(scores)), 4),
                            "seeds": [round(s, 4) for s in scores],
                            "seconds": round(time.perf_counter() - started, 1),
                        }
                    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.fewshot_layers", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", type=Path, default=ds.DEFAULT_DATA_DIR, help="datasets folder")
    add_encoder_arguments(parser)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--select", action="store_true", help="score on train rows held out from the pool")
    mode.add_argument("--test", action="store_true", help="score on the test split")
    parser.add_argument("--sets", default="emb,L4-6,L1-6", help="feature sets, comma-separated")
    parser.add_argument("--c", default=str(DEFAULT_C), help="logreg C values, comma-separated")
    parser.add_argument(
        "--help-with", default="none", help="comma-separated: none, prior, bg, prior+bg (default none)"
    )
    parser.add_argument("--shots", default=",".join(map(str, SHOTS)))
    parser.add_argument(
        "--solver",
        choices=("sklearn", "fast"),
        default="sklearn",
        help="sklearn: the service's train_one_vs_rest; fast: the same objective, all topics in one L-BFGS",
    )
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def factory() -> Encoder:
        from nlp_service.config import default_encoder_path

        return Encoder(args.encoder or default_encoder_path(), threads=args.threads)

    train, test, names, _ = load(args.data, FeatureCache(factory, None if args.no_cache else args.cache_dir))
    if args.select:
        order = np.random.default_rng(SELECT_SEED).permutation(len(train.labels))
        pick = order[:SELECT_POOL], order[SELECT_POOL:]
        pool, evaluation = (Split(train.layers[i], train.embedding[i], train.labels[i]) for i in pick)
    else:
        pool, evaluation = train, test

    def emit(row: dict[str, object]) -> None:
        row = {"mode": "select" if args.select else "test", **row}
        print(json.dumps(row), flush=True)
        if args.out is not None:
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")

    run_grid(
        pool,
        evaluation,
        names,
        args.sets.split(","),
        [float(c) for c in args.c.split(",")],
        args.help_with.split(","),
        [int(k) for k in args.shots.split(",")],
        emit,
        fast=args.solver == "fast",
    )


if __name__ == "__main__":
    main()
