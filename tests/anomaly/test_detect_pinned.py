"""The detectors' outputs on seeded cases are those pinned before they were batched across series (same
firings, same scores to 1e-9 relative), and a batch gives what one series at a time gives."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tests.anomaly.detect_cases import run_all

PINNED = Path(__file__).parent / "data" / "detect_expected.json"


def assert_close(got: Any, want: Any, path: str = "") -> None:
    if isinstance(want, float) and isinstance(got, float | int):
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (path, got, want)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (path, got, want)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{path}[{i}]")
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for k in want:
            assert_close(got[k], want[k], f"{path}/{k}")
    else:
        assert got == want, (path, got, want)


def test_outputs_are_the_pinned_ones() -> None:
    want = json.loads(PINNED.read_text())
    got = json.loads(json.dumps(run_all()))
    assert sum(len(v["spikes"]) for v in want["detect_series"].values()) > 100  # the cases do fire
    assert sum(len(v["change_points"]) for v in want["detect_series"].values()) > 20
    assert sum(len(v) for v in want["scan_series"].values()) > 20
    assert_close(got, want)
