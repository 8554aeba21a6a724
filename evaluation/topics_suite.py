"""Topics on Banking77 (zero-shot, few-shot, discovery) and on the project's labelled comments.

    python -m evaluation topics --data ../shared/datasets --json reports/topics.json

Banking77 as a 77-topic taxonomy named from its category ids (``card_arrival`` -> "card arrival"):

* ``banking77.zero_shot_macro_f1``: the zero-shot ``TopicScorer`` built from the names only, its centroids
  adapted to the unlabelled train texts (``background``), top topic per test text;
  ``banking77.zero_shot_names_only_macro_f1`` is the same without the background;
* ``banking77.few_shot_{8,16}_macro_f1``: ``nlp_service.topics.fewshot`` one-vs-rest scorers trained on 8 / 16
  train examples per topic (mean of 3 seeds), each topic with its names-only prototype as a prior and the
  train texts without labels as the background (borrowed neighbours and label spreading), top topic per test
  text (``..._examples_only_...``: the examples alone). Prior, background and spreading settings were picked
  on train rows held out from a 7,000-row background, 8 shots (train labels only); the test texts are never
  in the background;
* ``banking77.discovery_nmi`` / ``banking77.discovery_noise``: ``nlp_service.topics.discovery`` on the test
  texts with labels hidden; NMI counts the noise rows as one more cluster;
* ``custom.micro_f1``: the zero-shot evaluation of ``evaluation/topics.py`` on the labelled comments (test).

Features come from the feature cache (``var/cache``). Writes flat JSON and a markdown report beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nlp_service.config import REPO_ROOT, Settings
from nlp_service.topics import Taxonomy, Topic, TopicScorer
from nlp_service.topics.discovery import DEFAULT_SAMPLE_CAP, find_themes
from nlp_service.topics.fewshot import (
    DEFAULT_METHOD,
    METHODS,
    score_matrix,
    train_one_vs_rest,
)
from nlp_service.topics.model import TopicModel
from nlp_service.topics.scorer import ADAPT_ITERATIONS, ADAPT_WEIGHT
from training import datasets as ds
from training.cache import FeatureCache, add_encoder_arguments
from training.metrics import macro_f1

log = logging.getLogger(__name__)

SHOTS = (8, 16)
SEEDS = (0, 1, 2)
TARGETS = {
    "banking77.zero_shot_macro_f1": 0.66,
    "banking77.few_shot_8_macro_f1": 0.86,
    "banking77.few_shot_16_macro_f1": 0.89,
    "banking77.discovery_nmi": 0.80,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=ds.DEFAULT_DATA_DIR, help="datasets folder")
    parser.add_argument(
        "--json", type=Path, default=REPO_ROOT / "reports" / "topics.json", help="output JSON"
    )
    add_encoder_arguments(parser)
    parser.add_argument(
        "--compare", action="store_true", help="also score the other few-shot method (slower)"
    )
    parser.add_argument("--skip-custom", action="store_true", help="skip the labelled-comments evaluation")


def name_of(category: str) -> str:
    """``card_arrival`` -> ``card arrival``."""
    return category.replace("_", " ")


def banking_taxonomy(names: list[str]) -> Taxonomy:
    """The 77 categories as topics; the description is the name (zero-shot from names only)."""
    topics = tuple(Topic(id=n, name=name_of(n), description=name_of(n)) for n in names)
    return Taxonomy(topics=topics, name="banking77")


def few_shot_sample(labels: np.ndarray, n_topics: int, shots: int, seed: int) -> np.ndarray:
    """``shots`` row indexes per topic, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == t), size=shots, replace=False) for t in range(n_topics)]
    )


def nmi(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(labels_true, labels_pred))


class TopicsEvaluation:
    def __init__(self, data_dir: Path, cache: FeatureCache) -> None:
        self.data_dir = data_dir
        self.cache = cache
        self.results: dict[str, float] = {}
        self.notes: dict[str, str] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.cache.encode(texts, progress=False).embedding

    def banking77(self, *, compare: bool = False) -> None:
        train, names = ds.banking77(self.data_dir, "train")
        test, _ = ds.banking77(self.data_dir, "test")
        x_train, y_train = self.embed(train.texts), np.asarray(train.labels)
        x_test, y_test = self.embed(test.texts), np.asarray(test.labels)
        n_topics = len(names)

        taxonomy = banking_taxonomy(names)
        plain = TopicScorer.from_taxonomy(taxonomy, self.embed)
        pred = plain.score(x_test).argmax(axis=1)
        self.results["banking77.zero_shot_names_only_macro_f1"] = macro_f1(y_test, pred, n_topics)
        self.notes["banking77.zero_shot_names_only_macro_f1"] = (
            f"TopicScorer from the {n_topics} names alone (default options), argmax; n_test={len(y_test)}"
        )
        # The API's path: a taxonomy with ``adapt_to_comments`` built with stored comments as background.
        model = TopicModel.build(replace(taxonomy, adapt_to_comments=True), self.embed, background=x_train)
        pred = model.prototypes.score(x_test).argmax(axis=1)
        self.results["banking77.zero_shot_macro_f1"] = macro_f1(y_test, pred, n_topics)
        self.notes["banking77.zero_shot_macro_f1"] = (
            "TopicModel.build (the API's builder) from the names, centroids adapted to the "
            f"{len(x_train)} train texts without their "
            f"labels (background; weight {ADAPT_WEIGHT:g}, {ADAPT_ITERATIONS} rounds, centroid_weight 1), "
            "argmax; weight, rounds and centroid_weight picked on train rows held out from a 7,000-row "
            "background (train labels only); the test texts are never in the background"
        )

        # Each topic's prior is its names-only prototype; the background is the train texts without labels.
        helped = {"priors": plain.centroids, "background": x_train}
        variants = [(DEFAULT_METHOD, "", helped), (DEFAULT_METHOD, "_examples_only", {})]
        if compare:
            variants += [(m, f"_{m}", helped) for m in METHODS if m != DEFAULT_METHOD]
        for shots in SHOTS:
            for method, suffix, extra in variants:
                scores, seconds = [], []
                for seed in SEEDS:
                    rows = few_shot_sample(y_train, n_topics, shots, seed)
                    started = time.perf_counter()
                    topics = train_one_vs_rest(
                        x_train[rows],
                        y_train[rows],
                        n_topics,
                        method=method,
                        **extra,  # type: ignore[arg-type]
                    )
                    seconds.append(time.perf_counter() - started)
                    pred = score_matrix(topics, x_test).argmax(axis=1)
                    scores.append(macro_f1(y_test, pred, n_topics))
                key = f"banking77.few_shot_{shots}{suffix}_macro_f1"
                self.results[key] = float(np.mean(scores))
                how = "prior + background" if extra else "examples only"
                self.notes[key] = (
                    f"{method}, {how}, seeds {list(SEEDS)}: "
                    + ", ".join(f"{s:.4f}" for s in scores)
                    + f"; {np.mean(seconds):.1f} s to train the {n_topics} topics"
                )

        started = time.perf_counter()
        settings = Settings()  # the service's discovery settings, with the sample cap above the test size
        found = find_themes(
            x_test,
            sample_cap=DEFAULT_SAMPLE_CAP,
            merge_similarity=settings.discovery_merge_similarity,
            min_cluster_size=settings.discovery_min_cluster_size,
            seed=0,
        )
        self.results["banking77.discovery_nmi"] = nmi(y_test, found.labels)
        self.results["banking77.discovery_noise"] = found.noise_share
        self.results["banking77.discovery_clusters"] = float(len(found.clusters))
        self.notes["banking77.discovery_nmi"] = (
            f"find_themes (the service's path): k-means, k={found.k} chosen by cosine silhouette over "
            f"{sorted(found.silhouettes)}, parts merged at cosine {settings.discovery_merge_similarity}; "
            f"{len(found.clusters)} clusters, {len(found.noise)} noise rows; "
            f"{time.perf_counter() - started:.1f} s"
        )

    def custom(self) -> None:
        from evaluation.topics import PRIMARY_METRIC, evaluate_topics

        metrics = evaluate_topics(self.cache.encoder)
        self.results["custom.micro_f1"] = metrics[PRIMARY_METRIC]
        self.results["custom.macro_f1"] = metrics["topics.test.macro_f1"]
        self.notes["custom.micro_f1"] = (
            f"zero-shot taxonomy on the labelled comments' test split (n={int(metrics['topics.test.n'])}), "
            "thresholds from the taxonomy file"
        )


def markdown(ev: TopicsEvaluation, seconds: float) -> str:
    lines = ["# Topics evaluation", "", "| metric | value | target | note |", "|---|---:|---:|---|"]
    for key, value in ev.results.items():
        target = TARGETS.get(key)
        if key == "banking77.discovery_noise":
            target_text = "<= 0.20"
        else:
            target_text = "" if target is None else f">= {target:.2f}"
        lines.append(f"| `{key}` | {value:.4f} | {target_text} | {ev.notes.get(key, '')} |")
    lines += ["", f"Encoder: {ev.cache.encoder.info.name}; {seconds:.0f} s.", ""]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def factory() -> Any:
        from nlp_service.config import default_encoder_path
        from nlp_service.inference.encoder import Encoder

        return Encoder(args.encoder or default_encoder_path(), threads=args.threads)

    started = time.perf_counter()
    ev = TopicsEvaluation(args.data, FeatureCache(factory, None if args.no_cache else args.cache_dir))
    ev.banking77(compare=args.compare)
    if not args.skip_custom:
        ev.custom()
    report = markdown(ev, time.perf_counter() - started)
    print(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({k: round(v, 6) for k, v in ev.results.items()}, indent=2) + "\n")
    args.json.with_suffix(".md").write_text(report)
