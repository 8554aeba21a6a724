"""How ``discovery_merge_similarity`` splits and joins themes on real embeddings (all-MiniLM-L6-v2 on the
Banking77 test split; features cached under var/cache).

For each threshold: *single*: each intent's test texts alone (a burst of one theme), the share that comes out
as one cluster; *pairs*: 60 seeded random pairs of intents together, the share that comes out as two clusters,
and their NMI (noise counted as one more cluster). Run:

    PYTHONPATH=. python scripts/discovery_merge.py [--data ../shared/datasets] 0.6 0.65 0.7 0.8
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from nlp_service.config import default_encoder_path
from nlp_service.inference.encoder import Encoder
from nlp_service.topics.discovery import discover, merge_similar
from training import datasets as ds
from training.cache import DEFAULT_CACHE_DIR, FeatureCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("thresholds", nargs="*", type=float, default=[0.6, 0.65, 0.7, 0.8])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--min-cluster-size", type=int, default=5)
    args = parser.parse_args()
    test, names = ds.banking77(args.data, "test")
    cache = FeatureCache(lambda: Encoder(default_encoder_path(), threads=2), DEFAULT_CACHE_DIR)
    x = cache.encode(test.texts, progress=False).embedding
    y = np.asarray(test.labels)
    rng = np.random.default_rng(0)
    pairs = [rng.choice(len(names), 2, replace=False) for _ in range(60)]

    def clusters(idx: np.ndarray, t: float) -> np.ndarray:
        found = discover(x[idx], min_cluster_size=1, seed=0)
        return merge_similar(x[idx], found, min_similarity=t, min_cluster_size=args.min_cluster_size).labels

    print("threshold  single->1  mean k  pairs->2  mean k  NMI")
    for t in args.thresholds:
        single = np.asarray([clusters(np.flatnonzero(y == c), t).max() + 1 for c in range(len(names))])
        pair_k, pair_nmi = [], []
        for a, b in pairs:
            idx = np.flatnonzero((y == a) | (y == b))
            labels = clusters(idx, t)
            pair_k.append(labels.max() + 1)
            pair_nmi.append(normalized_mutual_info_score(y[idx], labels))
        k = np.asarray(pair_k)
        print(
            f"{t:9.2f}  {np.mean(single == 1):9.2f}  {single.mean():6.2f}  {np.mean(k == 2):8.2f}  "
            f"{k.mean():6.2f}  {np.mean(pair_nmi):.3f}"
        )


if __name__ == "__main__":
    main()
