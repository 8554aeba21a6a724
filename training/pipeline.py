"""Train one head from validated data; write it as a new registry version (weights, config, metrics, card)."""

from __future__ import annotations

import datetime as dt
import platform
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nlp_service.inference.encoder import Encoded
from nlp_service.inference.heads import Head, HeadConfig, load_head, save_head
from nlp_service.inference.registry import ModelRegistry
from training.cache import FeatureCache
from training.data import ClassData, Data, MultiLabelData, RegressionData
from training.errors import TrainingDataError
from training.metrics import accuracy, f1_per_class, macro_f1, macro_recall, pearson
from training.tasks import TaskSpec
from training.trainer import TrainParams, fit_head


@dataclass
class TrainOutcome:
    version: str
    path: Path
    head: Head
    metrics: dict[str, Any]


def encoder_display_name(name: str) -> str:
    """The shipped encoder by its model name, any other by the name or path it was loaded from."""
    from nlp_service.config import default_encoder_path

    try:
        if Path(name).resolve() == Path(default_encoder_path()).resolve():
            return "sentence-transformers/all-MiniLM-L6-v2"
    except ImportError:  # the packaged encoder is not installed
        pass
    return name


def split_validation(data: Data, fraction: float, seed: int) -> tuple[Data, Data]:
    """Seeded hold-out split (stratified by class for single-label data)."""
    if not 0.0 < fraction < 1.0:
        raise TrainingDataError(f"--val-split must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    n = len(data.texts)
    if isinstance(data, ClassData):
        val_idx: list[int] = []
        for c in range(len(data.label_names)):
            rows = np.flatnonzero(data.labels == c)
            rng.shuffle(rows)
            val_idx += rows[: max(1, round(len(rows) * fraction))].tolist()
        val_mask = np.zeros(n, dtype=bool)
        val_mask[val_idx] = True
    else:
        val_mask = np.zeros(n, dtype=bool)
        val_mask[rng.permutation(n)[: max(1, round(n * fraction))]] = True
    if val_mask.all() or not val_mask.any():
        raise TrainingDataError(f"too few rows ({n}) for a validation split of {fraction}")
    return subset(data, np.flatnonzero(~val_mask)), subset(data, np.flatnonzero(val_mask))


def subset(data: Data, rows: np.ndarray) -> Data:
    """Rows of a dataset (its attached encoding too)."""
    texts = [data.texts[i] for i in rows]
    encoded = None if data.encoded is None else data.encoded.take(np.asarray(rows).tolist())
    if isinstance(data, ClassData):
        return replace(data, texts=texts, labels=data.labels[rows], encoded=encoded)
    return replace(data, texts=texts, targets=data.targets[rows], encoded=encoded)


def encode(data: Data, cache: FeatureCache, *, progress: bool = True) -> Encoded:
    """The attached encoding, else encode through the cache (and attach it)."""
    if data.encoded is None:
        data.encoded = cache.encode(data.texts, progress=progress)
    return data.encoded


def names_of(data: Data) -> list[str]:
    return data.output_names if isinstance(data, RegressionData) else data.label_names


def targets_of(data: Data) -> np.ndarray:
    return data.labels if isinstance(data, ClassData) else data.targets


def head_metrics(head: Head, encoded: Encoded, data: Data) -> dict[str, Any]:
    """Metrics of a head's final outputs (probabilities / final-scale values) against a dataset."""
    scores = head.predict(encoded)
    return score_metrics(head, scores, data)


def score_metrics(head: Head, scores: np.ndarray, data: Data) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(data.texts)}
    if isinstance(data, ClassData):
        pred = scores.argmax(axis=1)
        k = len(head.labels)
        out.update(
            accuracy=accuracy(data.labels, pred),
            macro_recall=macro_recall(data.labels, pred, k),
            macro_f1=macro_f1(data.labels, pred, k),
        )
    elif isinstance(data, MultiLabelData):
        thr = np.asarray(head.thresholds or [0.5] * len(head.labels))
        pred = scores >= thr
        per = f1_per_class(data.targets, pred)
        tp = float((pred & data.targets.astype(bool)).sum())
        micro = 2 * tp / max(1.0, float(pred.sum() + data.targets.sum()))
        out.update(
            macro_f1=float(per.mean()),
            micro_f1=micro,
            f1_per_label={n: round(float(f), 4) for n, f in zip(head.labels, per, strict=True)},
        )
    else:
        per_output = {}
        for j, name in enumerate(head.labels):
            mask = ~np.isnan(data.targets[:, j])
            if mask.sum() > 1:
                per_output[name] = pearson(data.targets[mask, j], scores[mask, j])
        out.update(pearson_avg=float(np.mean(list(per_output.values()))), pearson=per_output)
    return out


def train_head(
    *,
    spec: TaskSpec,
    train: Data,
    val: Data,
    cache: FeatureCache,
    registry: ModelRegistry,
    params: TrainParams | None = None,
    evals: dict[str, Data] | None = None,
    data_info: dict[str, Any] | None = None,
    command: str = "",
    promote: bool | None = None,
    progress: bool = True,
    card_notes: str = "",
    output_scale: tuple[list[float], list[float]] | None = None,
) -> TrainOutcome:
    """Encode (through the cache), fit, and write ``<registry>/<task>/<new version>/``.

    ``promote``: make the new version active (default: only when the task had no version yet).
    ``evals`` (name -> held-out data, e.g. ``{"test": ...}``) are scored after training only (recorded in
    metrics.json and the card); they never influence training or model selection.
    """
    params = params or spec.params
    labels = names_of(train)
    encoder = cache.encoder
    enc_train = encode(train, cache, progress=progress)
    enc_val = encode(val, cache, progress=progress)
    x_train, x_val = spec.features.extract(enc_train), spec.features.extract(enc_val)
    fit = fit_head(
        spec.kind,
        x_train,
        targets_of(train),
        x_val,
        targets_of(val),
        params,
        n_outputs=len(labels),
        progress=progress,
    )

    scale = offset = out_range = None
    if spec.kind == "regression":
        assert fit.output_mean is not None and fit.output_std is not None
        scale, offset = fit.output_std.tolist(), fit.output_mean.tolist()
        if spec.output_range is not None and len(spec.output_range) == len(labels):
            out_range = [list(r) for r in spec.output_range]

    had_versions = bool(registry.versions(spec.name))
    version, path = registry.new_version_dir(spec.name)
    config = HeadConfig(
        task=spec.name,
        version=version,
        kind=spec.kind,
        labels=list(labels),
        features=spec.features,
        encoder_name=encoder_display_name(encoder.info.name),
        encoder_sha256=encoder.info.sha256,
        hidden=list(params.hidden),
        thresholds=None if fit.thresholds is None else [round(float(t), 4) for t in fit.thresholds],
        output_scale=scale,
        output_offset=offset,
        output_range=out_range,
        training={
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": command,
            "params": params.to_dict(),
            "best_epoch": fit.best_epoch,
            "val_selection_score": round(fit.val_score, 6),
            "n_train": len(train.texts),
            "n_val": len(val.texts),
            "python": platform.python_version(),
        },
        data=data_info or {},
    )
    save_head(path, config, fit.weights, metrics={}, card=None)
    head = load_head(path)  # score exactly what is on disk
    metrics: dict[str, Any] = {"validation": head_metrics(head, enc_val, val)}
    for name, held_out in (evals or {}).items():
        metrics[name] = head_metrics(head, encode(held_out, cache, progress=progress), held_out)
    save_head(
        path, config, fit.weights, metrics=metrics, card=model_card(head, path, metrics, spec, card_notes)
    )
    if promote or (promote is None and not had_versions):
        registry.promote(spec.name, version)
    return TrainOutcome(version=version, path=path, head=load_head(path), metrics=metrics)


def _fmt_metrics(metrics: dict[str, Any]) -> str:
    lines = []
    for split, values in metrics.items():
        flat = {k: v for k, v in values.items() if isinstance(v, int | float)}
        nested = {k: v for k, v in values.items() if isinstance(v, dict) and k != "f1_per_label"}
        parts = [f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in flat.items()]
        for name, sub in nested.items():
            parts += [f"{name}[{k}]={v:.4f}" for k, v in sub.items()]
        lines.append(f"| {split} | {', '.join(parts)} |")
    return "| split | metrics |\n|---|---|\n" + "\n".join(lines)


def model_card(head: Head, head_path: Path, metrics: dict[str, Any], spec: TaskSpec, notes: str = "") -> str:
    cfg = head.config
    tr = cfg.training
    files = cfg.data.get("files", {})
    data_lines = (
        "\n".join(f"- `{name}` sha256 `{digest}`" for name, digest in files.items()) or "- (not recorded)"
    )
    arch = " -> ".join(
        [str(head.weights["input_mean"].shape[0]), *map(str, cfg.hidden), str(len(cfg.labels))]
    )
    weights_file = head_path / "weights.safetensors"
    size_kb = weights_file.stat().st_size / 1024 if weights_file.is_file() else 0.0
    rescale = ""
    if cfg.output_scale is not None:
        rescale = (
            "\nOutputs are trained standardised and mapped back as `z * output_scale + output_offset`"
            f"{', then clipped to ' + str(cfg.output_range) if cfg.output_range else ''}.\n"
        )
    p = tr["params"]
    thresholds = (
        "Per-label decision thresholds were tuned on the validation data (config.json `thresholds`).\n"
        if cfg.thresholds
        else ""
    )
    return f"""# {cfg.task} head {cfg.version}

{spec.description}. Kind: `{cfg.kind}`. Outputs, in order: {", ".join(f"`{x}`" for x in cfg.labels)}.

## Method
A small network on frozen features of one encoder pass (`{cfg.encoder_name}`, weights sha256
`{cfg.encoder_sha256}`): the concatenated masked-mean-pooled hidden states of layers
{list(cfg.features.layers)}{" and the search embedding" if cfg.features.embedding else ""}, standardised.
Architecture {arch} (ReLU, dropout {p["dropout"]} / input dropout {p["input_dropout"]}),
AdamW lr {p["lr"]}, weight decay {p["weight_decay"]}, batch {p["batch_size"]}, cosine schedule,
early stopping on the validation {p["selection"]} (best epoch {tr["best_epoch"]} of at most {p["epochs"]}),
seed {p["seed"]}{", class-balanced loss" if p["balanced"] and cfg.kind == "softmax" else ""}.
{thresholds}{rescale}
Size: {head.num_parameters:,} parameters; `weights.safetensors` is {size_kb:.0f} KiB (float16 dense layers).

## Data
Train rows: {tr["n_train"]}; validation rows: {tr["n_val"]}.
Data fingerprint (sha256): `{cfg.data.get("sha256", "n/a")}`.
{data_lines}
{notes}
## Metrics
{_fmt_metrics(metrics)}

## Reproduce
```
{tr["command"]}
```
"""
