"""Search-quality proxy: Banking77 test texts as queries against its train texts, by the search vector.

A query's neighbours are the train texts ranked by cosine of the served search embedding (L2-normalised
mean of the last layer); a neighbour is relevant when it carries the query's intent label. ``accuracy@1``:
the nearest train text has the query's label; ``MRR@10``: the mean of 1/rank of the first relevant text
among the top 10 (0 when none). Pure functions; :func:`banking77_proxy` reads the data and encodes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training import datasets as ds
from training.cache import FeatureCache

K = 10
CHUNK = 1024  # queries scored per matrix product


def neighbour_metrics(
    queries: np.ndarray,
    query_labels: np.ndarray,
    corpus: np.ndarray,
    corpus_labels: np.ndarray,
    *,
    k: int = K,
) -> dict[str, float]:
    """accuracy@1 and MRR@k of label-matching nearest neighbours (rows are L2-normalised vectors)."""
    if len(queries) == 0 or len(corpus) == 0:
        raise ValueError("the search proxy needs queries and a corpus")
    name, k = f"mrr_at_{k}", min(k, len(corpus))
    hits_at_1, reciprocal = 0.0, 0.0
    for start in range(0, len(queries), CHUNK):
        scores = queries[start : start + CHUNK] @ corpus.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
        ranked = np.take_along_axis(top, order, axis=1)  # (q, k) corpus rows, best first
        relevant = corpus_labels[ranked] == query_labels[start : start + CHUNK, None]
        hits_at_1 += float(relevant[:, 0].sum())
        first = relevant.argmax(axis=1)
        reciprocal += float(np.where(relevant.any(axis=1), 1.0 / (first + 1), 0.0).sum())
    return {"accuracy_at_1": hits_at_1 / len(queries), name: reciprocal / len(queries)}


def banking77_proxy(data_dir: Path, cache: FeatureCache) -> dict[str, float]:
    """The proxy for the encoder behind ``cache`` (test queries against train texts)."""
    train, _ = ds.banking77(data_dir, "train")
    test, _ = ds.banking77(data_dir, "test")
    corpus = cache.encode(train.texts).embedding
    queries = cache.encode(test.texts).embedding
    return neighbour_metrics(queries, np.asarray(test.labels), corpus, np.asarray(train.labels))
