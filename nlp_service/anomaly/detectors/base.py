"""Shared data types and the detector contract.

Every detector follows the ruptures convention: ``fit(series)`` learns from a series and returns
``self``; ``predict()`` returns the detector's result (a tuple of result dataclasses).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SpikeKind = Literal["spike", "drop"]
ShiftKind = Literal["level_up", "level_down"]


def to_epoch_seconds(timestamps: npt.ArrayLike) -> IntArray:
    """Convert datetime64 values or numbers (epoch seconds) to int64 epoch seconds."""
    arr = np.asarray(timestamps)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[s]").astype(np.int64)
    return np.asarray(arr, dtype=np.float64).astype(np.int64)


@dataclass(frozen=True)
class Series:
    """One regular time series of counts (e.g. comments per topic per bucket).

    ``timestamps`` are int64 epoch seconds (bucket starts, strictly increasing, every step
    ``bucket_seconds``); ``values`` are floats, ``NaN`` meaning "missing" (ignored by detectors).
    """

    timestamps: IntArray
    values: FloatArray
    bucket_seconds: int

    def __post_init__(self) -> None:
        if self.bucket_seconds <= 0:
            raise ValueError("bucket_seconds must be positive")
        if self.timestamps.shape != self.values.shape or self.values.ndim != 1:
            raise ValueError("timestamps and values must be 1-D arrays of equal length")
        if self.timestamps.size > 1 and np.any(np.diff(self.timestamps) != self.bucket_seconds):
            raise ValueError("timestamps must be a regular grid; use Series.from_arrays to fill gaps")

    @classmethod
    def from_arrays(
        cls,
        timestamps: npt.ArrayLike,
        values: npt.ArrayLike,
        bucket_seconds: int,
        *,
        fill: float = 0.0,
    ) -> Series:
        """Build a regular series, sorting, snapping to buckets and filling missing buckets with ``fill``.

        For comment counts a missing bucket means zero comments (the default); pass ``fill=nan``
        when gaps are missing data. Duplicate buckets are summed.
        """
        ts = to_epoch_seconds(timestamps)
        vals = np.asarray(values, dtype=np.float64)
        if ts.shape != vals.shape or ts.ndim != 1:
            raise ValueError("timestamps and values must be 1-D arrays of equal length")
        if ts.size == 0:
            return cls(np.zeros(0, np.int64), np.zeros(0), int(bucket_seconds))
        bucket = ts // bucket_seconds
        # keep the phase of the first timestamp so 5-minute buckets at :42:53 stay at :42:53
        offset = int(ts.min() - bucket.min() * bucket_seconds)
        bucket = (ts - offset) // bucket_seconds
        start = int(bucket.min())
        idx = bucket - start
        n = int(idx.max()) + 1
        out = np.full(n, fill, dtype=np.float64)
        seen = np.zeros(n, dtype=bool)
        seen[idx] = True
        out[seen] = 0.0
        np.add.at(out, idx, vals)
        grid = (start + np.arange(n, dtype=np.int64)) * bucket_seconds + offset
        return cls(grid, out, int(bucket_seconds))

    def __len__(self) -> int:
        return int(self.values.size)


@dataclass(frozen=True)
class ChangePoint:
    """A level shift starting at ``index`` (first bucket of the new level)."""

    index: int
    timestamp: int
    before_mean: float
    after_mean: float
    kind: ShiftKind


@dataclass(frozen=True)
class Spike:
    """One anomalous bucket: ``observed`` against the seasonal ``expected`` count (with ``width`` > 1: the
    window of that many buckets ending at ``index``, their sums; ``detectors.windows``)."""

    index: int
    timestamp: int
    observed: float
    expected: float
    score: float
    p_value: float
    kind: SpikeKind
    width: int = 1


class Detector(ABC):
    """Base contract: ``fit(series) -> self`` then ``predict() -> tuple of results``."""

    series_: Series | None = None

    @abstractmethod
    def fit(self, series: Series) -> Detector:
        """Learn from ``series`` and return ``self``."""

    @abstractmethod
    def predict(self) -> tuple[ChangePoint, ...] | tuple[Spike, ...]:
        """Return the anomalies found in the fitted series, sorted by index."""

    def fit_predict(self, series: Series) -> tuple[ChangePoint, ...] | tuple[Spike, ...]:
        """``fit(series).predict()``."""
        return self.fit(series).predict()

    def _fitted(self) -> Series:
        if self.series_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(series) first")
        return self.series_


def nanmedian_rows(rows: np.ndarray, *, overwrite: bool = False) -> FloatArray:
    """Median along the last axis ignoring NaN (NaN where all are NaN), via one sort (faster than
    ``np.nanmedian``); ``rows`` may have any number of leading axes (rows of several series at once). With
    ``overwrite``, ``rows`` (an array of the caller's own) is sorted in place."""
    width = rows.shape[-1]
    if width == 0:
        return np.full(rows.shape[:-1], np.nan)
    if overwrite:  # the caller's array (sorted in place, spares a copy)
        rows.sort(axis=-1)
        srt = rows
    else:
        srt = np.sort(rows, axis=-1)  # NaNs sort last
    out = 0.5 * (srt[..., (width - 1) // 2] + srt[..., width // 2])  # rows without NaN
    gaps = np.isnan(srt[..., -1])
    if gaps.any():
        srt = srt[gaps]
        k = np.sum(~np.isnan(srt), axis=-1)
        lo = np.take_along_axis(srt, np.maximum((k - 1) // 2, 0)[..., None], axis=-1)[..., 0]
        hi = np.take_along_axis(srt, (np.maximum(k // 2, 0) - (k == 0))[..., None], axis=-1)[..., 0]
        out[gaps] = np.where(k > 0, 0.5 * (lo + hi), np.nan)
    return out


def nanmedian_last(values: np.ndarray) -> FloatArray:
    """``np.nanmedian(values, axis=-1, keepdims=True)``; by ``median_last`` (faster) on rows without NaN."""
    gaps = np.isnan(values).any(axis=-1)
    out = median_last(values, keepdims=True)
    if gaps.any():
        out[gaps] = np.nanmedian(values[gaps], axis=-1, keepdims=True)
    return out


def median_last(values: np.ndarray, *, keepdims: bool = False) -> FloatArray:
    """``np.median(values, axis=-1, keepdims=keepdims)``, by a sort (numpy's SIMD sort beats its partition)
    when every value is finite and none is ``-0.0`` (the same values then; ``np.median`` otherwise)."""
    k = values.shape[-1]
    if k == 0 or not np.isfinite(values).all() or np.any((values == 0) & np.signbit(values)):
        return np.median(values, axis=-1, keepdims=keepdims)
    srt = np.sort(values, axis=-1)
    out = srt[..., k // 2] if k % 2 else 0.5 * (srt[..., k // 2 - 1] + srt[..., k // 2])
    return out[..., None] if keepdims else out


def season_period(bucket_seconds: int, season_seconds: int | None) -> int:
    """Number of buckets in one seasonal period (0 when there is no usable seasonality)."""
    if not season_seconds or season_seconds % bucket_seconds or season_seconds // bucket_seconds < 2:
        return 0
    return season_seconds // bucket_seconds
