"""Classification heads on benchmark test splits (sentiment, emotions, intensity, valence/arousal, banking77).

    python -m evaluation classify --data ../shared/datasets --json reports/classify.json

Every score comes from the registry's ACTIVE heads applied to one encoder pass per text (features cached under
``var/cache``), on TEST splits (EI-reg: its dev split; the test set is not available). Banking77 has no
shipped head: a linear softmax head on the search embedding is fitted on its train split at evaluation time
(10% of train held out for early stopping) and scored on test, to show what the encoder offers for topics.
Writes the flat JSON metrics and a markdown report (printed, and saved next to the JSON as ``.md``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.search_proxy import banking77_proxy
from nlp_service.config import REPO_ROOT
from nlp_service.inference.heads import FeatureSpec, Head
from nlp_service.inference.registry import ModelRegistry, RegistryError
from training import datasets as ds
from training.cache import FeatureCache, add_encoder_arguments
from training.metrics import accuracy, macro_f1, macro_recall, pearson
from training.pipeline import encoder_display_name
from training.trainer import TrainParams, fit_head

log = logging.getLogger(__name__)

PRIMARY_KEYS = (
    "tweeteval_sentiment.macro_recall",
    "tweeteval_emotion.macro_f1",
    "goemotions.macro_f1",
    "emobank.valence_r",
    "emobank.arousal_r",
    "ei_reg.dev_pearson_avg",
    "banking77.accuracy",
)
BARS = {
    "tweeteval_sentiment.macro_recall": 0.66,
    "tweeteval_emotion.macro_f1": 0.70,
    "goemotions.macro_f1": 0.42,
    "emobank.valence_r": 0.66,
    "emobank.arousal_r": 0.45,
    "ei_reg.dev_pearson_avg": 0.64,
    "banking77.accuracy": 0.92,
    "search.accuracy_at_1": None,
    "topics.zero_shot_f1": None,
}
BANKING_FEATURES = FeatureSpec(layers=(), embedding=True)
BANKING_PARAMS = TrainParams(
    hidden=[], epochs=30, patience=5, lr=1e-3, weight_decay=0.01, dropout=0.0, input_dropout=0.1,
    balanced=False, selection="accuracy", seed=0,
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=ds.DEFAULT_DATA_DIR, help="datasets folder")
    parser.add_argument(
        "--json", type=Path, default=REPO_ROOT / "reports" / "classify.json", help="output JSON"
    )
    parser.add_argument("--models-dir", type=Path, default=REPO_ROOT / "models", help="head registry")
    add_encoder_arguments(parser)
    parser.add_argument(
        "--runtime",
        choices=("torch", "onnx"),
        default="torch",
        help="encoder runtime: torch (what the heads were trained on) or onnx (what the service runs)",
    )
    parser.add_argument("--quantize", action="store_true", help="int8 encoder (what NLP_QUANTIZE serves)")
    parser.add_argument(
        "--int8-keep-fp32",
        type=lambda v: tuple(x for x in v.split(",") if x),
        default=None,
        help="with --quantize: comma-separated node-name parts kept fp32 (default: the service's)",
    )
    parser.add_argument(
        "--skip-topics", action="store_true", help="do not run the zero-shot topic evaluation"
    )


class ClassifyEvaluation:
    """Runs each benchmark; ``results`` holds the flat metrics, ``notes`` the report details."""

    def __init__(
        self,
        data_dir: Path,
        registry: ModelRegistry,
        cache: FeatureCache,
        base_cache: FeatureCache | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.registry = registry
        self.cache = cache
        self.base_cache = base_cache or cache  # the stock fp32 encoder, for the search proxy
        self.results: dict[str, float] = {}
        self.notes: dict[str, str] = {}
        self.versions: dict[str, str] = {}

    def head(self, task: str) -> Head:
        head = self.registry.load_active(task, self.cache.encoder.info)
        self.versions[task] = head.version
        return head

    def sentiment(self) -> None:
        test = ds.tweeteval(self.data_dir, "sentiment", "test")
        probs = self.head("sentiment").predict(self.cache.encode(test.texts))
        y, pred = np.asarray(test.labels), probs.argmax(axis=1)
        self.results["tweeteval_sentiment.macro_recall"] = macro_recall(y, pred, 3)
        self.notes["tweeteval_sentiment.macro_recall"] = (
            f"`sentiment` head, argmax of 3 probabilities; n={len(y)}, accuracy {accuracy(y, pred):.4f}, "
            f"macro-F1 {macro_f1(y, pred, 3):.4f}"
        )

    def tweet_emotion(self) -> None:
        test = ds.tweeteval(self.data_dir, "emotion", "test")
        encoded = self.cache.encode(test.texts)
        y = np.asarray(test.labels)
        labels = list(ds.TWEETEVAL_EMOTION_LABELS)
        go = self.head("emotion")
        go_probs = go.predict(encoded)[:, [go.labels.index(x) for x in labels]]
        go_f1 = macro_f1(y, go_probs.argmax(axis=1), 4)
        try:
            head = self.head("emotion4")
        except RegistryError:
            self.results["tweeteval_emotion.macro_f1"] = go_f1
            self.notes["tweeteval_emotion.macro_f1"] = (
                "no `emotion4` head: argmax over the GoEmotions head's anger/joy/optimism/sadness "
                "probabilities"
            )
            return
        pred = head.predict(encoded)[:, [head.labels.index(x) for x in labels]].argmax(axis=1)
        self.results["tweeteval_emotion.macro_f1"] = macro_f1(y, pred, 4)
        self.notes["tweeteval_emotion.macro_f1"] = (
            "the 4 classes come from the dedicated `emotion4` softmax head (trained on tweeteval_emotion "
            "train); for comparison, argmax over the GoEmotions head's anger/joy/optimism/sadness "
            "probabilities gives "
            f"{go_f1:.4f}; n={len(y)}, accuracy {accuracy(y, pred):.4f}"
        )

    def goemotions(self) -> None:
        test = ds.goemotions(self.data_dir, "test")
        head = self.head("emotion")
        probs = head.predict(self.cache.encode(test.texts))
        y = np.zeros_like(probs, dtype=bool)
        for i, ids in enumerate(test.multi):
            y[i, ids] = True
        thresholds = np.asarray(head.thresholds or [0.5] * len(head.labels))
        self.results["goemotions.macro_f1"] = macro_f1(y, probs >= thresholds)
        at_half = macro_f1(y, probs >= 0.5)
        self.notes["goemotions.macro_f1"] = (
            f"28 labels, per-label thresholds tuned on dev (0.5 everywhere would give {at_half:.4f}); "
            f"n={len(y)}"
        )

    def emobank(self) -> None:
        test = ds.emobank(self.data_dir, "test")
        head = self.head("valence")
        out = head.predict(self.cache.encode(test.texts))
        va = np.asarray(test.targets)
        self.results["emobank.valence_r"] = pearson(va[:, 0], out[:, head.labels.index("valence")])
        self.results["emobank.arousal_r"] = pearson(va[:, 1], out[:, head.labels.index("arousal")])
        self.notes["emobank.valence_r"] = "Pearson r against V/A (the linear rescaling does not change r)"

    def ei_reg(self) -> None:
        head = self.head("intensity")
        per: dict[str, float] = {}
        for emotion in ds.EI_EMOTIONS:
            dev = ds.ei_reg(self.data_dir, emotion, "dev")
            out = head.predict(self.cache.encode(dev.texts))[:, head.labels.index(emotion)]
            per[emotion] = pearson(np.asarray(dev.targets)[:, 0], out)
        self.results["ei_reg.dev_pearson_avg"] = float(np.mean(list(per.values())))
        self.notes["ei_reg.dev_pearson_avg"] = "dev split; " + ", ".join(
            f"{k} {v:.4f}" for k, v in per.items()
        )

    def banking77(self) -> None:
        train, names = ds.banking77(self.data_dir, "train")
        test, _ = ds.banking77(self.data_dir, "test")
        x = BANKING_FEATURES.extract(self.cache.encode(train.texts))
        y = np.asarray(train.labels)
        order = np.random.default_rng(0).permutation(len(y))
        val, fit_rows = order[: len(y) // 10], order[len(y) // 10 :]
        fit = fit_head(
            "softmax", x[fit_rows], y[fit_rows], x[val], y[val], BANKING_PARAMS, n_outputs=len(names)
        )
        from nlp_service.inference.heads import HeadConfig

        config = HeadConfig(
            task="banking77", version="eval", kind="softmax", labels=names, features=BANKING_FEATURES,
            encoder_name=self.cache.encoder.info.name, encoder_sha256=self.cache.encoder.info.sha256,
        )  # fmt: skip
        probs = Head(config, fit.weights).predict(self.cache.encode(test.texts))
        self.results["banking77.accuracy"] = accuracy(np.asarray(test.labels), probs.argmax(axis=1))
        self.notes["banking77.accuracy"] = (
            "linear softmax head on the search embedding, fitted now on train "
            f"(val accuracy {fit.val_score:.4f},"
            f" epoch {fit.best_epoch}); n_test={len(test.labels)}"
        )

    def search(self) -> None:
        """The search proxy (Banking77 test queries against train) for the served and the base encoder."""
        served = banking77_proxy(self.data_dir, self.cache)
        base = served if self.base_cache is self.cache else banking77_proxy(self.data_dir, self.base_cache)
        for name, value in served.items():
            self.results[f"search.{name}"] = value
        for name, value in base.items():
            self.results[f"search.base_{name}"] = value
        self.notes["search.accuracy_at_1"] = (
            "Banking77 test texts as queries against its train texts, nearest neighbours by the served "
            "search vector; `base_` rows: the stock fp32 encoder"
        )

    def topics(self) -> None:
        try:
            from evaluation.topics import evaluate_topics
        except ImportError:
            self.notes["topics.zero_shot_f1"] = "evaluation.topics is not available"
            return
        scores = evaluate_topics(self.cache.encoder)
        self.results["topics.zero_shot_f1"] = float(scores["topics.zero_shot_f1"])
        self.notes["topics.zero_shot_f1"] = "from `evaluation.topics.evaluate_topics` (micro-F1, test split)"


def markdown(ev: ClassifyEvaluation, seconds: float) -> str:
    info = ev.cache.encoder.info
    lines = [
        "# Classification heads: benchmark report",
        "",
        f"Encoder `{encoder_display_name(info.name)}` (sha256 `{info.sha256[:12]}`, "
        f"runtime {ev.cache.encoder.runtime}); heads "
        + ", ".join(f"{t} {v}" for t, v in sorted(ev.versions.items()))
        + f". Wall time {seconds:.0f} s.",
        "",
        "| metric | value | bar | pass | how |",
        "|---|---:|---:|:---:|---|",
    ]
    for key, value in ev.results.items():
        bar = BARS.get(key)
        ok = "" if bar is None else ("yes" if value >= bar else "NO")
        lines.append(
            f"| {key} | {value:.4f} | {'' if bar is None else bar} | {ok} | {ev.notes.get(key, '')} |"
        )
    extra = {k: v for k, v in ev.notes.items() if k not in ev.results}
    if extra:
        lines += ["", *[f"- {k}: {v}" for k, v in extra.items()]]
    return "\n".join(lines) + "\n"


def evaluate(
    data_dir: Path,
    registry: ModelRegistry,
    cache: FeatureCache,
    *,
    topics: bool = True,
    base_cache: FeatureCache | None = None,
) -> ClassifyEvaluation:
    """Run every benchmark; a missing head is recorded in the notes instead of failing the whole run.

    ``base_cache``: the stock fp32 encoder for the search proxy's side-by-side (default: ``cache``'s).
    """
    ev = ClassifyEvaluation(data_dir, registry, cache, base_cache)
    steps = [ev.sentiment, ev.tweet_emotion, ev.goemotions, ev.emobank, ev.ei_reg, ev.banking77, ev.search]
    if topics:
        steps.append(ev.topics)
    for step in steps:
        try:
            step()
        except RegistryError as exc:
            ev.notes[step.__name__] = f"skipped: {exc}"
            log.warning("%s skipped: %s", step.__name__, exc)
    return ev


def encoder_cache(
    args: argparse.Namespace, encoder: str | None, *, quantize: bool, keep_fp32: tuple[str, ...] | None = None
) -> FeatureCache:
    """A feature cache over ``encoder`` (default: the stock one) in ``args.runtime``, built on first use."""

    def factory() -> Any:
        from nlp_service.config import default_encoder_path
        from nlp_service.inference.encoder import Encoder
        from nlp_service.inference.quantize import DEFAULT_KEEP_FP32

        built = Encoder(
            encoder or default_encoder_path(),
            threads=args.threads,
            runtime=args.runtime,
            quantize=quantize,
            int8_keep_fp32=DEFAULT_KEEP_FP32 if keep_fp32 is None else keep_fp32,
        )
        built.warm_up()  # checks ONNX Runtime against torch (falls back to torch, logged)
        return built

    return FeatureCache(factory, None if args.no_cache else args.cache_dir)


def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    cache = encoder_cache(args, args.encoder, quantize=args.quantize, keep_fp32=args.int8_keep_fp32)
    stock = args.encoder is None and not args.quantize
    base = None if stock else encoder_cache(args, None, quantize=False)
    registry = ModelRegistry(args.models_dir)
    ev = evaluate(args.data, registry, cache, topics=not args.skip_topics, base_cache=base)
    report = markdown(ev, time.perf_counter() - started)
    print(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({k: round(v, 6) for k, v in ev.results.items()}, indent=2) + "\n")
    args.json.with_suffix(".md").write_text(report)
