"""Fit a small MLP (or linear) head on frozen encoder features with torch; export numpy weights.

Targets by kind:
- ``softmax``: class ids (n,), class-balanced cross-entropy when ``balanced``;
- ``sigmoid``: indicator matrix (n, k), binary cross-entropy;
- ``regression``: float matrix (n, k) with NaN where an output is not supervised (masked MSE on standardised
  targets; the head rescales its outputs back).
The best epoch on the validation data (by :func:`selection_score`) is kept (early stopping).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.metrics import macro_f1, macro_recall, pearson, tune_thresholds


@dataclass
class TrainParams:
    """Hyper-parameters of one head fit."""

    hidden: list[int] = field(default_factory=lambda: [256])
    epochs: int = 40
    patience: int = 6
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-2
    dropout: float = 0.3
    input_dropout: float = 0.1
    balanced: bool = True
    label_smoothing: float = 0.0
    selection: str = "auto"  # macro_recall | macro_f1 | accuracy | pearson | auto (by kind)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitResult:
    weights: dict[str, np.ndarray]
    val_score: float
    best_epoch: int
    output_mean: np.ndarray | None = None
    output_std: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    history: list[float] = field(default_factory=list)


def _net(in_dim: int, out_dim: int, params: TrainParams) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Dropout(params.input_dropout)]
    dim = in_dim
    for h in params.hidden:
        layers += [nn.Linear(dim, h), nn.ReLU(), nn.Dropout(params.dropout)]
        dim = h
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


def _dense_weights(net: nn.Sequential) -> dict[str, np.ndarray]:
    linears = [m for m in net if isinstance(m, nn.Linear)]
    out: dict[str, np.ndarray] = {}
    for i, lin in enumerate(linears):
        out[f"dense.{i}.weight"] = lin.weight.detach().numpy().copy()
        out[f"dense.{i}.bias"] = lin.bias.detach().numpy().copy()
    return out


def selection_score(
    kind: str, metric: str, y: np.ndarray, out: np.ndarray
) -> tuple[float, np.ndarray | None]:
    """Validation score of raw outputs (logits / standardised predictions); thresholds for sigmoid heads."""
    if kind == "softmax":
        pred = out.argmax(axis=1)
        k = out.shape[1]
        if metric == "macro_f1":
            return macro_f1(y, pred, k), None
        if metric == "accuracy":
            return float(np.mean(pred == y)), None
        return macro_recall(y, pred, k), None
    if kind == "sigmoid":
        probs = 1.0 / (1.0 + np.exp(-out))
        thr = tune_thresholds(y, probs)
        return macro_f1(y, probs >= thr), thr
    scores = []
    for j in range(y.shape[1]):
        mask = ~np.isnan(y[:, j])
        if mask.sum() > 1:
            scores.append(pearson(y[mask, j], out[mask, j]))
    return float(np.mean(scores)) if scores else 0.0, None


def fit_head(
    kind: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    params: TrainParams,
    *,
    n_outputs: int,
    progress: bool = True,
) -> FitResult:
    """Train and return numpy weights (input standardisation included) of the best validation epoch.

    Runs single-threaded: these nets are small, and on a shared machine extra threads mostly spin.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(kind, x_train, y_train, x_val, y_val, params, n_outputs=n_outputs, progress=progress)
    finally:
        torch.set_num_threads(threads)


def _fit(
    kind: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    params: TrainParams,
    *,
    n_outputs: int,
    progress: bool,
) -> FitResult:
    torch.manual_seed(params.seed)
    gen = torch.Generator().manual_seed(params.seed)
    x_train = np.asarray(x_train, dtype=np.float32)
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0) + 1e-6
    xt = torch.from_numpy((x_train - mean) / scale)
    xv = torch.from_numpy((np.asarray(x_val, dtype=np.float32) - mean) / scale)

    out_mean: np.ndarray | None = None
    out_std: np.ndarray | None = None
    if kind == "softmax":
        yt = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
        weight = None
        if params.balanced:
            counts = np.bincount(y_train, minlength=n_outputs).astype(np.float64)
            w = np.where(counts > 0, len(y_train) / (n_outputs * np.maximum(counts, 1)), 0.0)
            weight = torch.tensor(w, dtype=torch.float32)
        loss_fn: Any = nn.CrossEntropyLoss(weight=weight, label_smoothing=params.label_smoothing)
    elif kind == "sigmoid":
        yt = torch.from_numpy(np.asarray(y_train, dtype=np.float32))
        loss_fn = nn.BCEWithLogitsLoss()
    else:
        y = np.asarray(y_train, dtype=np.float64)
        out_mean = np.nanmean(y, axis=0)
        out_std = np.nanstd(y, axis=0) + 1e-6
        yt = torch.from_numpy(((y - out_mean) / out_std).astype(np.float32))

        def loss_fn(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            mask = ~torch.isnan(target)
            return ((pred - torch.nan_to_num(target)) ** 2)[mask].mean()

    metric = params.selection
    if metric == "auto":
        metric = {"softmax": "macro_recall", "sigmoid": "macro_f1"}.get(kind, "pearson")
    y_val_cmp = np.asarray(y_val)
    if out_mean is not None and out_std is not None:  # regression: compare on the standardised scale
        y_val_cmp = (np.asarray(y_val, dtype=np.float64) - out_mean) / out_std

    net = _net(xt.shape[1], n_outputs, params)
    opt = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=params.epochs)
    best: tuple[float, int, dict[str, np.ndarray], np.ndarray | None] = (
        -np.inf,
        0,
        _dense_weights(net),
        None,
    )
    history: list[float] = []
    bar = tqdm(range(params.epochs), desc=f"training {kind} head", unit="epoch", disable=not progress)
    stale = 0
    for epoch in bar:
        net.train()
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(order), params.batch_size):
            idx = order[start : start + params.batch_size]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        sched.step()
        net.eval()
        with torch.no_grad():
            out = net(xv).numpy()
        score, thr = selection_score(kind, metric, y_val_cmp, out)
        history.append(score)
        bar.set_postfix({metric: f"{score:.4f}"})
        if score > best[0]:
            best = (score, epoch + 1, _dense_weights(net), thr)
            stale = 0
        else:
            stale += 1
            if stale >= params.patience:
                break
    weights = {"input_mean": mean.astype(np.float32), "input_scale": scale.astype(np.float32), **best[2]}
    return FitResult(
        weights=weights,
        val_score=float(best[0]),
        best_epoch=best[1],
        output_mean=out_mean,
        output_std=out_std,
        thresholds=best[3],
        history=history,
    )
