"""Metrics shared by training (model selection) and evaluation (reports)."""

from __future__ import annotations

import numpy as np


def macro_recall(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean per-class recall over the classes present in ``y_true``."""
    recalls = [float(np.mean(y_pred[y_true == c] == c)) for c in range(n_classes) if np.any(y_true == c)]
    return float(np.mean(recalls)) if recalls else 0.0


def f1_per_class(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-column F1 of binary indicator matrices (n, k); 0 where a column has no true and no predicted."""
    y_true, y_pred = y_true.astype(bool), y_pred.astype(bool)
    tp = (y_true & y_pred).sum(axis=0).astype(np.float64)
    denom = y_true.sum(axis=0) + y_pred.sum(axis=0)
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> float:
    """Macro-F1 of class ids (1-D) or of binary indicator matrices (2-D)."""
    if y_true.ndim == 1:
        k = n_classes or int(max(y_true.max(), y_pred.max()) + 1)
        eye = np.eye(k, dtype=bool)
        return float(f1_per_class(eye[y_true], eye[y_pred]).mean())
    return float(f1_per_class(y_true, y_pred).mean())


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true == y_pred))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """Per-label threshold maximising that label's F1 on (development) data; 0.5 for labels never seen."""
    grid = np.arange(0.05, 0.951, 0.025) if grid is None else grid
    y_true = y_true.astype(bool)
    thresholds = np.full(y_true.shape[1], 0.5)
    for j in range(y_true.shape[1]):
        if not y_true[:, j].any():
            continue
        pred = probs[:, j][None, :] >= grid[:, None]  # (g, n)
        tp = (pred & y_true[:, j][None, :]).sum(axis=1)
        f1 = 2 * tp / (pred.sum(axis=1) + y_true[:, j].sum())
        thresholds[j] = float(grid[int(np.argmax(f1))])
    return thresholds
