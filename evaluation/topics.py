"""Zero-shot topic evaluation on the labelled customer-comment set, and threshold tuning on its dev split.

    python -m evaluation.topics            # report dev and test F1 with the thresholds in the taxonomy
    python -m evaluation.topics --tune     # tune thresholds on dev, write them into the taxonomy file,
                                           # cache the prototypes beside it, then report

The primary metric ``topics.zero_shot_f1`` is the micro-averaged F1 over all (comment, topic) pairs of the
test split. Thresholds are only ever fitted on the dev split.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nlp_service.topics import (
    Taxonomy,
    TopicScorer,
    load_taxonomy,
    micro_f1,
    prototypes_path,
    save_taxonomy,
    tune_thresholds,
)

if TYPE_CHECKING:
    from nlp_service.inference.encoder import Encoder

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT / "evaluation" / "data" / "topics_labelled.jsonl"
DEFAULT_TAXONOMY = REPO_ROOT / "models" / "topics" / "taxonomy.json"
PRIMARY_METRIC = "topics.zero_shot_f1"

log = logging.getLogger(__name__)


def load_labelled(path: str | Path, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """Rows ``{"text", "topics", "split"}``; labels outside the taxonomy are an error."""
    rows = []
    known = set(taxonomy.ids)
    with Path(path).open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            unknown = set(row["topics"]) - known
            if unknown:
                raise ValueError(f"{path}:{number}: topics not in the taxonomy: {sorted(unknown)}")
            if row.get("split") not in ("dev", "test"):
                raise ValueError(f"{path}:{number}: split must be 'dev' or 'test'")
            rows.append(row)
    return rows


def _gold(rows: list[dict[str, Any]], ids: list[str]) -> np.ndarray:
    return np.array([[t in row["topics"] for t in ids] for row in rows], dtype=bool).reshape(
        len(rows), len(ids)
    )


def _metrics(predicted: np.ndarray, gold: np.ndarray, ids: list[str], prefix: str) -> dict[str, float]:
    tp = int(np.sum(predicted & gold))
    out = {
        f"{prefix}micro_f1": micro_f1(predicted, gold),
        f"{prefix}precision": tp / max(int(predicted.sum()), 1),
        f"{prefix}recall": tp / max(int(gold.sum()), 1),
    }
    per_topic = [micro_f1(predicted[:, j], gold[:, j]) for j in range(len(ids))]
    out[f"{prefix}macro_f1"] = float(np.mean(per_topic))
    out.update({f"{prefix}f1.{topic}": f for topic, f in zip(ids, per_topic, strict=True)})
    return out


def _predicted(scorer: TopicScorer, embeddings: np.ndarray) -> np.ndarray:
    return scorer.gate(scorer.score(embeddings)) >= scorer.thresholds


def evaluate_topics(
    encoder: Encoder,
    data_path: str | Path | None = None,
    *,
    taxonomy_path: str | Path | None = None,
) -> dict[str, float]:
    """Metrics of the zero-shot topic scorer; ``topics.zero_shot_f1`` is micro-F1 on the test split.

    Also returns ``topics.dev.*`` and ``topics.test.*`` (micro/macro F1, precision, recall, per-topic F1)
    and the split sizes. Prototypes are embedded with ``encoder`` (nothing is written).
    """
    taxonomy = load_taxonomy(taxonomy_path or DEFAULT_TAXONOMY)
    rows = load_labelled(data_path or DEFAULT_DATA, taxonomy)
    scorer = TopicScorer.from_taxonomy(taxonomy, lambda texts: encoder.encode(texts).embedding)
    embeddings = encoder.encode([row["text"] for row in rows]).embedding
    metrics: dict[str, float] = {"topics.n_topics": float(len(taxonomy.topics))}
    for split in ("dev", "test"):
        index = [i for i, row in enumerate(rows) if row["split"] == split]
        predicted = _predicted(scorer, embeddings[index])
        metrics.update(
            _metrics(predicted, _gold([rows[i] for i in index], scorer.ids), scorer.ids, f"topics.{split}.")
        )
        metrics[f"topics.{split}.n"] = float(len(index))
    metrics[PRIMARY_METRIC] = metrics["topics.test.micro_f1"]
    return metrics


def topics_markdown(metrics: dict[str, float]) -> str:
    """A short markdown section for the evaluation report."""
    topic_ids = sorted(
        key.removeprefix("topics.test.f1.") for key in metrics if key.startswith("topics.test.f1.")
    )
    lines = [
        "## Zero-shot topics",
        "",
        f"Taxonomy of {int(metrics['topics.n_topics'])} topics; prototypes from descriptions and example "
        "phrases; per-topic thresholds tuned on the dev split only.",
        "",
        "| split | n | micro-F1 | macro-F1 | precision | recall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for split in ("dev", "test"):
        p = f"topics.{split}."
        values = [metrics[p + key] for key in ("micro_f1", "macro_f1", "precision", "recall")]
        lines.append(
            f"| {split} | {int(metrics[p + 'n'])} | " + " | ".join(f"{v:.3f}" for v in values) + " |"
        )
    lines += ["", "| topic | dev F1 | test F1 |", "|---|---:|---:|"]
    for topic in topic_ids:
        dev, test = metrics[f"topics.dev.f1.{topic}"], metrics[f"topics.test.f1.{topic}"]
        lines.append(f"| {topic} | {dev:.3f} | {test:.3f} |")
    lines += ["", f"Primary metric `{PRIMARY_METRIC}` (test micro-F1): **{metrics[PRIMARY_METRIC]:.3f}**", ""]
    return "\n".join(lines)


def tune_taxonomy(
    encoder: Encoder,
    *,
    taxonomy_path: str | Path = DEFAULT_TAXONOMY,
    data_path: str | Path = DEFAULT_DATA,
    shrink: float = 0.5,
) -> Taxonomy:
    """Fit thresholds on the dev split, write them into the taxonomy file and cache its prototypes."""
    taxonomy = load_taxonomy(taxonomy_path)
    dev = [row for row in load_labelled(data_path, taxonomy) if row["split"] == "dev"]
    scorer = TopicScorer.from_taxonomy(taxonomy, lambda texts: encoder.encode(texts).embedding)
    scores = scorer.gate(scorer.score(encoder.encode([row["text"] for row in dev]).embedding))
    thresholds, overall = tune_thresholds(scores, _gold(dev, scorer.ids), shrink=shrink)
    tuned = taxonomy.with_thresholds(dict(zip(scorer.ids, thresholds.tolist(), strict=True)), default=overall)
    save_taxonomy(tuned, taxonomy_path)
    scorer.with_taxonomy(tuned).save(prototypes_path(taxonomy_path), encoder_sha256=encoder.info.sha256)
    return tuned


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m evaluation.topics", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tune", action="store_true", help="fit thresholds on dev and write the taxonomy file"
    )
    parser.add_argument("--taxonomy", type=Path, default=DEFAULT_TAXONOMY)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--encoder", default=None, help="encoder path (default: the shipped all-MiniLM-L6-v2)"
    )
    parser.add_argument(
        "--shrink", type=float, default=0.5, help="weight of the global threshold when tuning"
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON instead of markdown")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from nlp_service.config import default_encoder_path
    from nlp_service.inference.encoder import Encoder

    encoder = Encoder(args.encoder or default_encoder_path())
    if args.tune:
        tuned = tune_taxonomy(encoder, taxonomy_path=args.taxonomy, data_path=args.data, shrink=args.shrink)
        log.info("wrote thresholds to %s (default %.2f)", args.taxonomy, tuned.default_threshold)
    metrics = evaluate_topics(encoder, args.data, taxonomy_path=args.taxonomy)
    print(json.dumps(metrics, indent=2) if args.json else topics_markdown(metrics))


if __name__ == "__main__":
    main()
