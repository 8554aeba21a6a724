"""Embedding rows as unit vectors (cosine similarity as a dot product)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def normalise(x: npt.ArrayLike, dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """``x`` (as ``dtype``, default its own) with each row along the last axis scaled to unit length (zero
    rows stay zero)."""
    a = np.asarray(x, dtype=dtype)
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
