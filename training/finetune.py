"""Fine-tune the encoder end to end for one task, register it as a new encoder version, then fit the head.

``python -m training <task> --finetune`` (and ``defaults --finetune``):

1. the transformer is trained with masked mean pooling of its last layer and a linear output layer for the
   task's kind (class-balanced cross-entropy / binary cross-entropy / masked MSE on standardised targets),
   AdamW with linear warm-up and decay, gradient clipping, seeded; the epoch with the best validation score
   is kept;
2. it is saved (config, ``model.safetensors``, tokenizer) as ``<registry>/encoders/v<n>/`` with
   ``finetune.json`` (base encoder, parameters, timings, the head that uses it);
3. the task's usual head is fitted on that encoder's pooled features (:func:`training.pipeline.train_head`),
   so its ``config.json`` names the new encoder's path and sha256: the service refuses it unless it runs that
   encoder (``NLP_ENCODER=<registry>/encoders/v<n>``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from nlp_service.inference.encoder import Encoder, resolve_model_dir, weights_sha256
from nlp_service.inference.heads import CARD_FILE, METRICS_FILE
from nlp_service.inference.registry import ModelRegistry
from training.cache import FeatureCache
from training.data import Data
from training.pipeline import TrainOutcome, encoder_display_name, names_of, targets_of, train_head
from training.tasks import TaskSpec
from training.trainer import TrainParams, selection_score

FINETUNE_FILE = "finetune.json"


@dataclass
class FinetuneParams:
    """Hyper-parameters of one end-to-end fine-tuning run."""

    epochs: int = 1  # emotion4 (3.2k tweets): ~11 min on 2 busy CPU cores, test macro-F1 0.712 -> 0.728
    lr: float = 5e-5
    batch_size: int = 32
    max_length: int = 64
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of the steps
    dropout: float = 0.1  # before the output layer
    balanced: bool = True  # class-balanced loss (softmax)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FinetuneResult:
    """A fine-tuned encoder on disk."""

    version: str
    path: Path
    sha256: str
    base: str
    base_sha256: str
    seconds: float
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def _loss_fn(kind: str, y: np.ndarray, n_outputs: int, balanced: bool) -> Any:
    if kind == "softmax":
        weight = None
        if balanced:
            counts = np.bincount(y, minlength=n_outputs).astype(np.float64)
            w = np.where(counts > 0, len(y) / (n_outputs * np.maximum(counts, 1)), 0.0)
            weight = torch.tensor(w, dtype=torch.float32)
        return nn.CrossEntropyLoss(weight=weight)
    if kind == "sigmoid":
        return nn.BCEWithLogitsLoss()

    def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mask = ~torch.isnan(target)
        return ((pred - torch.nan_to_num(target)) ** 2)[mask].mean()

    return masked_mse


def _targets(kind: str, data: Data) -> tuple[np.ndarray, torch.Tensor]:
    """(targets as numpy for scoring, training tensor); regression targets standardised."""
    y = targets_of(data)
    if kind == "softmax":
        return y, torch.from_numpy(np.asarray(y, dtype=np.int64))
    if kind == "sigmoid":
        return y, torch.from_numpy(np.asarray(y, dtype=np.float32))
    y = np.asarray(y, dtype=np.float64)
    z = (y - np.nanmean(y, axis=0)) / (np.nanstd(y, axis=0) + 1e-6)
    return y, torch.from_numpy(z.astype(np.float32))


def finetune_encoder(
    base: str,
    kind: str,
    train: Data,
    val: Data,
    out_dir: Path,
    params: FinetuneParams,
    *,
    threads: int | None = None,
    progress: bool = True,
) -> tuple[str, float, int, list[dict[str, float]]]:
    """Fine-tune ``base`` on ``train`` (best epoch on ``val``) and save it to ``out_dir``.

    Returns (weights sha256, seconds, best epoch, per-epoch history).
    """
    from transformers import AutoModel, AutoTokenizer

    started = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(params.seed)
    gen = torch.Generator().manual_seed(params.seed)
    model_dir = resolve_model_dir(base)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir))
    n_outputs = len(names_of(train))
    out_layer = nn.Sequential(nn.Dropout(params.dropout), nn.Linear(model.config.hidden_size, n_outputs))
    y_train, yt = _targets(kind, train)
    y_val, _ = _targets(kind, val)
    loss_fn = _loss_fn(kind, np.asarray(y_train), n_outputs, params.balanced)
    metric = {"softmax": "macro_f1", "sigmoid": "macro_f1"}.get(kind, "pearson")

    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (p.ndim < 2 or "LayerNorm" in n)]
    opt = torch.optim.AdamW(
        [
            {"params": decay + list(out_layer.parameters()), "weight_decay": params.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=params.lr,
    )
    per_epoch = math.ceil(len(train.texts) / params.batch_size)
    total = max(1, per_epoch * params.epochs)
    warm = max(1, int(total * params.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm))
    )

    def forward(texts: list[str]) -> torch.Tensor:
        batch = tokenizer(
            texts, padding=True, truncation=True, max_length=params.max_length, return_tensors="pt"
        )
        hidden = model(**batch).last_hidden_state
        return out_layer(_mean_pool(hidden, batch["attention_mask"]))

    def validate() -> float:
        model.eval()
        out_layer.eval()
        outs = []
        with torch.inference_mode():
            for start in range(0, len(val.texts), 64):
                outs.append(forward(val.texts[start : start + 64]).numpy())
        return selection_score(kind, metric, np.asarray(y_val), np.concatenate(outs))[0]

    history: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor] | None] = (-math.inf, 0, None)
    bar = tqdm(total=total, desc="fine-tuning encoder", unit="step", disable=not progress)
    for epoch in range(params.epochs):
        model.train()
        out_layer.train()
        order = torch.randperm(len(train.texts), generator=gen).tolist()
        running = 0.0
        for i, start in enumerate(range(0, len(order), params.batch_size)):
            idx = order[start : start + params.batch_size]
            opt.zero_grad()
            loss = loss_fn(forward([train.texts[j] for j in idx]), yt[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*model.parameters(), *out_layer.parameters()], 1.0)
            opt.step()
            sched.step()
            running += loss.item()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{running / (i + 1):.4f}")
        score = validate()
        history.append({"epoch": epoch + 1, "train_loss": running / per_epoch, f"val_{metric}": score})
        bar.set_postfix(
            epoch=epoch + 1, loss=f"{running / per_epoch:.4f}", **{f"val_{metric}": f"{score:.4f}"}
        )
        if score > best[0]:
            best = (score, epoch + 1, {k: v.detach().clone() for k, v in model.state_dict().items()})
    bar.close()
    if best[2] is not None:
        model.load_state_dict(best[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return weights_sha256(out_dir), time.perf_counter() - started, best[1], history


def _card_section(ft: FinetuneResult, params: FinetuneParams) -> str:
    p = params
    rows = "\n".join(
        "| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in h.values()) + " |"
        for h in ft.history
    )
    head = (
        "| " + " | ".join(ft.history[0]) + " |\n|" + "---|" * len(ft.history[0]) + "\n" if ft.history else ""
    )
    return f"""
## Fine-tuned encoder
This head reads a task-fine-tuned encoder, `encoders/{ft.version}` (`{ft.path}`, weights sha256
`{ft.sha256}`), not the shipped one: serve it with `NLP_ENCODER={ft.path}` (the service refuses it on any
other encoder; the service runs one encoder for all heads, so the other tasks' heads must be trained on it
too before this one is promoted). Base encoder `{ft.base}` (sha256 `{ft.base_sha256}`), fine-tuned end to
end with masked mean pooling of the last layer and a linear output layer: {p.epochs} epoch(s),
AdamW lr {p.lr}, weight decay {p.weight_decay}, batch {p.batch_size}, max length {p.max_length} tokens,
linear warm-up ({p.warmup:.0%}) and decay, gradient clipping 1.0, dropout {p.dropout}, seed {p.seed};
epoch {ft.best_epoch} kept (best on the validation data). Fine-tuning took {ft.seconds:.0f} s.
The head below was then fitted on this encoder's frozen pooled features as usual.

{head}{rows}
"""


def _comparison(baseline: tuple[str, dict[str, Any]] | None, metrics: dict[str, Any], seconds: float) -> str:
    lines = ["", "## Cost and comparison", f"Wall time of the whole run (fine-tuning + encoding + head): "
             f"{seconds:.0f} s."]  # fmt: skip
    if baseline is not None:
        version, base_metrics = baseline
        lines += ["", f"Against the previously active version {version} (same evaluation splits):", "",
                  f"| split | metric | {version} | this version |", "|---|---|---:|---:|"]  # fmt: skip
        for split, values in metrics.items():
            for key, value in values.items():
                old = base_metrics.get(split, {}).get(key)
                if isinstance(value, float) and isinstance(old, float):
                    lines.append(f"| {split} | {key} | {old:.4f} | {value:.4f} |")
    return "\n".join(lines) + "\n"


def finetune_and_train(
    *,
    spec: TaskSpec,
    train: Data,
    val: Data,
    registry: ModelRegistry,
    base_encoder: str,
    ft_params: FinetuneParams,
    params: TrainParams | None = None,
    evals: dict[str, Data] | None = None,
    data_info: dict[str, Any] | None = None,
    command: str = "",
    promote: bool | None = None,
    progress: bool = True,
    card_notes: str = "",
    cache_dir: Path | None = None,
    threads: int | None = None,
) -> tuple[TrainOutcome, FinetuneResult]:
    """Fine-tune the encoder, register it under ``<registry>/encoders/``, fit and register the task's head."""
    started = time.perf_counter()
    baseline = None
    if registry.versions(spec.name):
        active = registry.active_version(spec.name)
        metrics_file = registry.path(spec.name, active) / METRICS_FILE
        if metrics_file.is_file():
            baseline = (active, json.loads(metrics_file.read_text()))
    base_dir = resolve_model_dir(base_encoder)
    version, enc_dir = registry.new_encoder_dir()
    sha, seconds, best_epoch, history = finetune_encoder(
        base_encoder, spec.kind, train, val, enc_dir, ft_params, threads=threads, progress=progress
    )
    ft = FinetuneResult(
        version=version,
        path=enc_dir.resolve(),
        sha256=sha,
        base=encoder_display_name(base_encoder),
        base_sha256=weights_sha256(base_dir),
        seconds=seconds,
        best_epoch=best_epoch,
        history=history,
    )
    encoder = Encoder(str(ft.path), threads=threads)
    for data in (train, val, *(evals or {}).values()):
        data.encoded = None  # features of the base encoder, if any, do not apply
    outcome = train_head(
        spec=spec,
        train=train,
        val=val,
        cache=FeatureCache(encoder, cache_dir),
        registry=registry,
        params=params,
        evals=evals,
        data_info=data_info,
        command=command,
        promote=promote,
        progress=progress,
        card_notes=card_notes + _card_section(ft, ft_params),
    )
    total = time.perf_counter() - started
    card = outcome.path / CARD_FILE
    card.write_text(card.read_text() + _comparison(baseline, outcome.metrics, total))
    record = {
        "base": {"name": ft.base, "sha256": ft.base_sha256},
        "sha256": ft.sha256,
        "task": spec.name,
        "head": f"{spec.name}/{outcome.version}",
        "kind": spec.kind,
        "params": ft_params.to_dict(),
        "best_epoch": best_epoch,
        "history": history,
        "n_train": len(train.texts),
        "n_val": len(val.texts),
        "finetune_seconds": round(seconds, 1),
        "total_seconds": round(total, 1),
        "command": command,
        "data": data_info or {},
    }
    (enc_dir / FINETUNE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return outcome, ft
