"""The NAB split protocol (evaluation/anomaly_nab_split.py) on small generated files, no datasets."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.anomaly_nab_split import (
    SHIPPED,
    Params,
    choose,
    evaluate_split,
    split_files,
    split_metrics,
    split_protocol,
)
from evaluation.nab_scoring import STANDARD, NabFile, nab_best_threshold, nab_prepare
from nlp_service.anomaly.detectors import Series

N = 400
NAMES = [f"f{i}.csv" for i in range(10)]
P_LOW = Params("robust", 288, 0)  # two grid points; their scores differ per file
P_HIGH = Params("moment", 288, 0)


def make_file(name: str, windows: list[tuple[int, int]]) -> NabFile:
    ts = 300 * np.arange(N, dtype=np.int64)
    return nab_prepare(name, ts, [(int(ts[a]), int(ts[b])) for a, b in windows], STANDARD)


def test_split_is_fixed_disjoint_and_halves() -> None:
    a, b = split_files(NAMES)
    assert len(a) == len(b) == 5 and set(a) | set(b) == set(NAMES) and not set(a) & set(b)
    assert (a, b) == split_files(list(reversed(NAMES)))  # depends on the names, not their order
    assert split_files(NAMES, seed=1) != (a, b)


def scores_for(files: list[NabFile]) -> dict[Params, dict[str, np.ndarray]]:
    """Each file: a score of 5 at row 150 and of 3 at row 300 (the rest 0); P_HIGH doubles the second."""
    low, high = {}, {}
    for f in files:
        s = np.zeros(N)
        s[150], s[300] = 5.0, 3.0
        low[f.name] = s
        h = s.copy()
        h[300] = 10.0
        high[f.name] = h
    return {P_LOW: low, P_HIGH: high, SHIPPED: low}


def files_with(a_window: int, b_window: int) -> list[NabFile]:
    """Half A's files have their window around row ``a_window``, half B's around ``b_window``."""
    a, _ = split_files(NAMES)
    return [make_file(n, [(w - 10, w + 10)]) for n in NAMES for w in [a_window if n in a else b_window]]


def test_choice_uses_the_training_half_only() -> None:
    grid = (P_LOW, P_HIGH)
    # A's windows hold row 150, B's row 300: trained on A, row 150 must be detected, row 300 is noise
    files = files_with(150, 300)
    out = split_protocol(files, scores_for(files), grid=grid)
    a_to_b = out["directions"]["a_to_b"]
    train = [f for f in files if f.name in out["files_a"]]
    expected = choose(train, {p: scores_for(files)[p] for p in grid})
    assert (a_to_b["params"], a_to_b["threshold"]) == (expected.params, expected.threshold)
    # moving the test half's labels changes the test score, never the choice
    moved = files_with(150, 150)
    out_moved = split_protocol(moved, scores_for(moved), grid=grid)["directions"]["a_to_b"]
    assert (out_moved["params"], out_moved["threshold"]) == (a_to_b["params"], a_to_b["threshold"])
    assert out_moved["raw"] != pytest.approx(a_to_b["raw"])
    # and the choice is not the one the test labels would make
    test = [f for f in files if f.name in out["files_b"]]
    by_test = nab_best_threshold(test, [scores_for(files)[a_to_b["params"]][f.name] for f in test], STANDARD)
    assert by_test[0] != a_to_b["threshold"]
    assert a_to_b["raw"] < by_test[1]


def test_both_directions_mean_and_pooled() -> None:
    files = files_with(150, 300)
    out = split_protocol(files, scores_for(files), grid=(P_LOW, P_HIGH))
    m = split_metrics(out)
    a, b = (
        m["nab_realtweets.split.a_to_b.normalized_standard"],
        m["nab_realtweets.split.b_to_a.normalized_standard"],
    )
    assert m["nab_realtweets.split.mean.normalized_standard"] == pytest.approx((a + b) / 2)
    assert out["pooled_raw"] == pytest.approx(
        out["directions"]["a_to_b"]["raw"] + out["directions"]["b_to_a"]["raw"]
    )
    assert m["nab_realtweets.split.pooled.normalized_standard"] == pytest.approx(
        100.0 * (out["pooled_raw"] + 10) / (out["in_sample"]["perfect"] + 10)
    )


def test_evaluate_split_runs_the_detector_on_small_series() -> None:
    rng = np.random.default_rng(0)
    series, files = {}, []
    for name in NAMES:
        values = rng.poisson(20.0, 1200).astype(float)
        values[900:903] = 200.0
        ts = 300 * np.arange(values.size, dtype=np.int64)
        series[name] = Series(ts, values, 300)
        files.append(nab_prepare(name, ts, [(int(ts[880]), int(ts[920]))], STANDARD))
    out = evaluate_split(files, series, grid=(P_LOW, Params("robust", 72, 6)))
    for d in out["directions"].values():
        assert d["normalized"] > 50.0 and d["raw"] > 0.0  # the bursts are found, little else
