"""The NAB scorer's threshold sweep (evaluation/nab_scoring.py) on small generated files, no datasets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.nab_scoring import (
    STANDARD,
    NabFile,
    nab_best_threshold,
    nab_detections,
    nab_prepare,
    nab_score_at,
)


def make_file(name: str, n: int, windows: list[tuple[int, int]]) -> NabFile:
    ts = 300 * np.arange(n, dtype=np.int64)
    return nab_prepare(name, ts, [(int(ts[a]), int(ts[b])) for a, b in windows], STANDARD)


def brute_force(files: list[NabFile], scores: list[np.ndarray], refractory: int) -> float:
    best = -STANDARD["fn"] * sum(f.n_windows for f in files)
    for t in np.unique(np.concatenate(scores)):
        total = 0.0
        for f, a in zip(files, scores, strict=True):
            kept = np.where(np.arange(a.size) >= f.probation, a, 0.0)
            det = nab_detections(kept, float(t), refractory) if t > 0 else np.zeros(a.size, bool)
            total += nab_score_at(f, det, STANDARD)
        best = max(best, total)
    return best


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), refractory=st.sampled_from([0, 1, 5]))
def test_sweep_matches_brute_force(seed: int, refractory: int) -> None:
    rng = np.random.default_rng(seed)
    files = [make_file("a", 200, [(60, 80), (140, 160)]), make_file("b", 150, [(90, 110)])]
    scores = [
        np.where(rng.random(f.window.size) < 0.15, rng.integers(1, 8, f.window.size), 0.0) for f in files
    ]
    _, raw = nab_best_threshold(files, scores, STANDARD, refractory=refractory)
    assert raw == pytest.approx(brute_force(files, scores, refractory))


def test_refractory_removes_repeat_false_positives() -> None:
    f = make_file("a", 200, [(150, 170)])
    s = np.zeros(200)
    s[50:54] = 5.0  # one burst outside the window: four rows
    s[155] = 5.0
    _, plain = nab_best_threshold([f], [s], STANDARD)
    _, snoozed = nab_best_threshold([f], [s], STANDARD, refractory=12)
    assert snoozed == pytest.approx(plain + 3 * STANDARD["fp"])
