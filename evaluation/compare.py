"""Compare two versions of a task's head side by side on the same labelled data, with a per-class table.

    python -m evaluation compare emotion4 v1 v2 [--registry models/] [--data ../shared/datasets | FILE]

``--data`` is the datasets folder (default; the task's standard held-out split of ``python -m training
defaults``: test, or EI-reg dev for intensity) or a labelled file read like ``python -m training <task>``
(``--text-col``, ``--label-col``, ``--label-sep``). Each version runs on the encoder its config names: a local
folder (a fine-tuned ``encoders/v<n>``) as recorded, anything else on ``--encoder`` (default: the shipped
one); a version whose encoder does not match is refused. Classification: accuracy / macro scores and
precision, recall, F1 per class (sigmoid heads at their own thresholds); regression: Pearson r per output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from nlp_service.inference.encoder import Encoder
from nlp_service.inference.heads import Head, load_head_config
from nlp_service.inference.registry import ModelRegistry, RegistryError
from training import datasets as ds
from training.cache import DEFAULT_CACHE_DIR, FeatureCache
from training.data import ClassData, Data, MultiLabelData
from training.errors import TrainingDataError
from training.metrics import pearson
from training.pipeline import encoder_display_name, names_of, targets_of
from training.tasks import TASKS

DEFAULT_REGISTRY = Path(__file__).resolve().parent.parent / "models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("version_a")
    parser.add_argument("version_b")
    parser.add_argument(
        "--data", type=Path, default=ds.DEFAULT_DATA_DIR, help="datasets folder or a labelled file"
    )
    parser.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY, help="models directory")
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--label-col", default="label", help="label column(s) of a labelled file")
    parser.add_argument("--label-sep", default=",", help="separator of labels within a cell (multi-label)")
    parser.add_argument("--encoder", default=None, help="encoder for versions not bound to a local folder")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="feature cache")
    parser.add_argument("--no-cache", action="store_true", help="encode without the feature cache")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")


def load_data(task: str, data: Path, args: argparse.Namespace) -> tuple[Data, str]:
    """The labelled data and a description of it."""
    if data.is_dir():
        from training.defaults import load_default_splits

        _, _, evals, _, _ = load_default_splits(task, data, None, 0, False)
        split, held_out = next(iter(evals.items()))
        return held_out, f"the standard `{split}` split of {task} in {data}"
    from training.cli import load_task_data

    ns = argparse.Namespace(
        text_col=args.text_col, label_col=args.label_col, label_sep=args.label_sep, labels=None,
        drop_duplicates=False,
    )  # fmt: skip
    return load_task_data(TASKS[task], ns, data), f"{data}"


def version_scores(head: Head, data: Data, scores: np.ndarray) -> dict[str, Any]:
    """Overall metrics and per-class (or per-output) rows of one head's outputs against ``data``."""
    names = names_of(data)
    missing = [n for n in names if n not in head.labels]
    if missing:
        raise RegistryError(f"{head.task}/{head.version} has no output(s) {missing}")
    cols = [head.labels.index(n) for n in names]
    scores = scores[:, cols]
    y = targets_of(data)
    if head.kind == "regression":
        per = {}
        for j, name in enumerate(names):
            mask = ~np.isnan(y[:, j])
            per[name] = {"pearson": pearson(y[mask, j], scores[mask, j]), "n": int(mask.sum())}
        return {"overall": {"pearson_avg": float(np.mean([r["pearson"] for r in per.values()]))}, "per": per}
    if isinstance(data, ClassData):
        k = len(names)
        pred = scores.argmax(axis=1)
        truth, hits = np.eye(k, dtype=bool)[y], np.eye(k, dtype=bool)[pred]
    else:
        thr = np.asarray(head.thresholds or [0.5] * len(head.labels))[cols]
        truth, hits = y.astype(bool), scores >= thr
    tp = (truth & hits).sum(axis=0).astype(float)
    precision = tp / np.maximum(hits.sum(axis=0), 1)
    recall = tp / np.maximum(truth.sum(axis=0), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    per = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(names, precision, recall, f1, truth.sum(axis=0), strict=True)
    }
    overall = {"macro_f1": float(f1.mean()), "macro_precision": float(precision.mean()),
               "macro_recall": float(recall.mean())}  # fmt: skip
    if isinstance(data, MultiLabelData):
        overall["micro_f1"] = float(2 * tp.sum() / max(1.0, hits.sum() + truth.sum()))
    else:
        overall = {"accuracy": float(np.mean(pred == y)), **overall}
    return {"overall": overall, "per": per}


def compare(
    task: str, versions: tuple[str, str], data: Data, registry: ModelRegistry, encoders: Any
) -> dict[str, Any]:
    """Scores of both versions; ``encoders(path) -> FeatureCache`` gives each version's encoder."""
    out: dict[str, Any] = {"task": task, "n": len(data.texts), "versions": {}}
    for version in versions:
        config = load_head_config(registry.path(task, version))
        local = Path(config.encoder_name)
        cache = encoders(str(local) if local.is_dir() else None)
        head = registry.load(task, version, cache.encoder.info)
        result = version_scores(head, data, head.predict(cache.encode(data.texts, progress=False)))
        result["encoder"] = {
            "name": encoder_display_name(cache.encoder.info.name),
            "sha256": cache.encoder.info.sha256,
        }
        out["versions"][version] = result
    return out


def report(result: dict[str, Any], description: str) -> str:
    """Markdown: both versions' overall metrics, then one row per class / output."""
    (a, ra), (b, rb) = result["versions"].items()
    lines = [f"# {result['task']}: {a} vs {b}", "", f"Data: {description} (n={result['n']}).", ""]
    lines += [f"- {v}: encoder `{r['encoder']['name']}` (sha256 `{r['encoder']['sha256'][:12]}`)"
              for v, r in result["versions"].items()]  # fmt: skip
    lines += ["", f"| metric | {a} | {b} | {b} - {a} |", "|---|---:|---:|---:|"]
    for key, va in ra["overall"].items():
        vb = rb["overall"][key]
        lines.append(f"| {key} | {va:.4f} | {vb:.4f} | {vb - va:+.4f} |")
    first = next(iter(ra["per"].values()))
    if "pearson" in first:
        lines += ["", f"| output | n | {a} r | {b} r | {b} - {a} |", "|---|---:|---:|---:|---:|"]
        for name, row in ra["per"].items():
            r, other = row["pearson"], rb["per"][name]["pearson"]
            lines.append(f"| {name} | {row['n']} | {r:.4f} | {other:.4f} | {other - r:+.4f} |")
    else:
        lines += [
            "",
            f"| class | support | {a} P | {a} R | {a} F1 | {b} P | {b} R | {b} F1 | F1 {b} - {a} |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, row in ra["per"].items():
            o = rb["per"][name]
            cells = [row["precision"], row["recall"], row["f1"], o["precision"], o["recall"], o["f1"]]
            lines.append(
                f"| {name} | {row['support']} | "
                + " | ".join(f"{c:.4f}" for c in cells)
                + f" | {o['f1'] - row['f1']:+.4f} |"
            )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> None:
    caches: dict[str | None, FeatureCache] = {}

    def encoders(path: str | None) -> FeatureCache:
        if path not in caches:
            from nlp_service.config import default_encoder_path

            encoder = Encoder(path or args.encoder or default_encoder_path(), threads=args.threads)
            caches[path] = FeatureCache(encoder, None if args.no_cache else args.cache_dir)
        return caches[path]

    try:
        data, description = load_data(args.task, args.data, args)
        result = compare(
            args.task, (args.version_a, args.version_b), data, ModelRegistry(args.registry), encoders
        )
    except (RegistryError, TrainingDataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    print(report(result, description))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
