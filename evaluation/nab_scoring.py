"""The NAB scorer (no datasets): the cost profile, windows, scores of detections and the threshold sweep.

NAB scoring follows NAB v1.1's sweeper (``nab/sweeper.py``), re-implemented here:

* probationary period ``min(floor(0.15 n), 0.15 * 5000)`` rows, not scored;
* a row inside window ``[L, R]`` (width ``w = R - L + 1``) scores ``A_TP * sig(-(R - i + 1) / w) / sig(-1)``
  with the scaled sigmoid ``sig(y) = 2 / (1 + exp(5 y)) - 1`` (``-1`` for ``y > 3``); a window counts its
  best (= earliest) detection; an undetected window costs ``A_FN``;
* a row outside windows scores ``A_FP * sig(|i - R_prev| / (w_prev - 1))`` after a window, ``A_FP * -1``
  before the first one;
* standard profile: ``A_TP = 1``, ``A_FP = 0.11``, ``A_FN = 1``; detections are rows with
  ``score >= threshold``; the threshold maximises the summed score over the corpus, searched over
  every distinct anomaly score (NAB optimises over its whole 58-file corpus; here only the 10
  realTweets files exist, which favours us slightly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nlp_service.anomaly.detectors import refractory_alerts

STANDARD = {"tp": 1.0, "fp": 0.11, "fn": 1.0}


def _scaled_sigmoid(y: np.ndarray) -> np.ndarray:
    return np.where(y > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 50.0))) - 1.0)


@dataclass(frozen=True)
class NabFile:
    """One scored file: per-row window id (-1 outside), per-row sweep score, probation length."""

    name: str
    window: np.ndarray
    sweep: np.ndarray
    probation: int

    @property
    def n_windows(self) -> int:
        """Number of labelled windows."""
        return int(self.window.max()) + 1 if (self.window >= 0).any() else 0


def nab_prepare(name: str, timestamps: np.ndarray, windows: list[tuple[int, int]], cost: dict) -> NabFile:
    """Per-row NAB sweep scores for ``timestamps`` (epoch s) and windows given as (start, end) epoch s."""
    n = timestamps.size
    probation = int(min(math.floor(0.15 * n), 0.15 * 5000))
    pos = np.arange(n)
    window = np.full(n, -1)
    sweep = np.zeros(n)
    prev_right = np.full(n, -1)
    prev_width = np.ones(n)
    for k, (a, b) in enumerate(sorted(windows)):
        left, right = int(np.searchsorted(timestamps, a)), int(np.searchsorted(timestamps, b))
        if timestamps[left] != a or timestamps[right] != b:
            raise ValueError(f"{name}: window bounds must be row timestamps")
        width = right - left + 1
        sl = slice(left, right + 1)
        window[sl] = k
        sweep[sl] = (
            _scaled_sigmoid(-(right - pos[sl] + 1) / width) * cost["tp"] / _scaled_sigmoid(np.array(-1.0))
        )
        prev_right[right + 1 :] = right
        prev_width[right + 1 :] = width
    out = window < 0
    past = np.abs(prev_right - pos) / np.maximum(prev_width - 1, 1)
    sweep[out] = np.where(prev_right[out] >= 0, _scaled_sigmoid(past[out]), -1.0) * cost["fp"]
    return NabFile(name, window, sweep, probation)


def nab_score_at(f: NabFile, detected: np.ndarray, cost: dict) -> float:
    """NAB score of one file for a boolean detection vector."""
    det = detected.copy()
    det[: f.probation] = False
    fp = float(f.sweep[det & (f.window < 0)].sum())
    total = fp
    for k in range(f.n_windows):
        hits = det & (f.window == k)
        total += float(f.sweep[hits].max()) if hits.any() else -cost["fn"]
    return total


def nab_detections(scores: np.ndarray, threshold: float, refractory: int) -> np.ndarray:
    """Boolean detection vector: the alerts at ``threshold`` (``refractory`` 0: every crossing)."""
    det = np.zeros(scores.size, bool)
    det[refractory_alerts(scores, threshold, refractory=refractory)] = True
    return det


def nab_file_detections(f: NabFile, scores: np.ndarray, threshold: float, refractory: int) -> np.ndarray:
    """A file's detections: alerts at ``threshold`` emitted from the end of the probationary period on."""
    return nab_detections(np.where(np.arange(scores.size) >= f.probation, scores, 0.0), threshold, refractory)


def nab_perfect(files: list[NabFile], cost: dict) -> float:
    """The perfect detector's summed score: one detection on the first row of every window."""
    total = 0.0
    for f in files:
        first = np.zeros(f.window.size, bool)
        for k in range(f.n_windows):
            first[np.flatnonzero(f.window == k)[0]] = True
        total += nab_score_at(f, first, cost)
    return total


def nab_best_threshold(
    files: list[NabFile], scores: list[np.ndarray], cost: dict, *, refractory: int = 0
) -> tuple[float, float]:
    """NAB's threshold optimisation: the threshold (a distinct score) maximising the summed score.

    With ``refractory`` > 0 the detections at each candidate threshold are the refractory alerts
    (exhaustive over the distinct positive scores after probation; slower than the single pass).
    """
    if refractory > 0:
        return _best_threshold_refractory(files, scores, cost, refractory)
    s, w, sw = [], [], []
    offset = 0
    for f, a in zip(files, scores, strict=True):
        s.append(a[f.probation :])
        w.append(np.where(f.window[f.probation :] >= 0, f.window[f.probation :] + offset, -1))
        sw.append(f.sweep[f.probation :])
        offset += f.n_windows
    s_all, w_all, sw_all = np.concatenate(s), np.concatenate(w), np.concatenate(sw)
    order = np.argsort(-s_all, kind="stable")
    best_in_window: dict[int, float] = {}
    fp = tp = 0.0
    best = (math.inf, -cost["fn"] * offset)  # threshold above every score: nothing detected
    for rank, j in enumerate(order):
        if w_all[j] < 0:
            fp += sw_all[j]
        else:
            prev = best_in_window.get(int(w_all[j]))
            if prev is None or sw_all[j] > prev:
                tp += sw_all[j] - (prev if prev is not None else 0.0)
                best_in_window[int(w_all[j])] = float(sw_all[j])
        last_of_tie = rank + 1 == order.size or s_all[order[rank + 1]] != s_all[j]
        if last_of_tie:
            total = fp + tp - cost["fn"] * (offset - len(best_in_window))
            if total > best[1]:
                best = (float(s_all[j]), total)
    return best


def _best_threshold_refractory(
    files: list[NabFile], scores: list[np.ndarray], cost: dict, refractory: int
) -> tuple[float, float]:
    # sparse: only rows with a positive score after probation can alert; the files are laid end to end with
    # a gap longer than the refractory period, so one pass over the positive rows scores every file
    pos, val, sw, win = [], [], [], []
    row_offset = win_offset = 0
    for f, a in zip(files, scores, strict=True):
        idx = np.flatnonzero((np.arange(a.size) >= f.probation) & (a > 0))
        pos.append(idx + row_offset)
        val.append(a[idx])
        sw.append(f.sweep[idx])
        win.append(np.where(f.window[idx] >= 0, f.window[idx] + win_offset, -1))
        row_offset += a.size + refractory + 1
        win_offset += f.n_windows
    p_all, v_all, sw_all, w_all = (np.concatenate(x) for x in (pos, val, sw, win))
    best = (math.inf, -cost["fn"] * win_offset)
    for t in np.unique(v_all)[::-1]:
        above = np.flatnonzero(v_all >= t)
        kept, last = [], -math.inf
        for k, q in enumerate(p_all[above].tolist()):  # a plain loop: much faster than numpy per alert
            if q > last + refractory:
                kept.append(k)
                last = q
        sel = above[kept]
        w, v = w_all[sel], sw_all[sel]
        best_hit = np.full(win_offset, -np.inf)
        np.maximum.at(best_hit, w[w >= 0], v[w >= 0])
        hit = np.isfinite(best_hit)
        total = float(v[w < 0].sum() + best_hit[hit].sum()) - cost["fn"] * float(win_offset - hit.sum())
        if total > best[1]:
            best = (float(t), total)
    return best
