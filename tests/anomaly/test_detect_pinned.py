"""The detectors' outputs on seeded cases are those pinned before they were batched across series (same
firings, same scores to 1e-9 relative), and a batch gives what one series at a time gives."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from nlp_service.anomaly import rules
from nlp_service.anomaly.detectors import detect_many, detect_series
from tests.anomaly.detect_cases import (
    SETTINGS,
    detectors,
    result_dict,
    run_all,
    series_cases,
    series_set,
)

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


@pytest.mark.parametrize("setup", ["default", "service", "moment", "latest"])
def test_a_batch_gives_what_one_series_at_a_time_gives(setup: str) -> None:
    cases = series_cases()  # three grids (daily 365 and 120, hourly), plus odd lengths
    kwargs = [detectors(s.bucket_seconds)[setup] for _, s in cases]
    one = [result_dict(detect_series(s, **kw)) for (_, s), kw in zip(cases, kwargs, strict=True)]
    by_bucket: dict[int, list[int]] = {}
    for i, (_, s) in enumerate(cases):
        by_bucket.setdefault(s.bucket_seconds, []).append(i)
    got: dict[int, dict[str, Any]] = {}
    for members in by_bucket.values():  # detectors are configured per bucket size
        kw = dict(kwargs[members[0]])
        found = list(detect_many([cases[i][1] for i in members], batch=5, **kw))
        assert sorted(j for j, _ in found) == list(range(len(members)))
        got.update({members[j]: result_dict(f.result) for j, f in found})
    assert_close([got[i] for i in range(len(cases))], one)


def test_the_service_scan_of_a_whole_set_is_the_pinned_one() -> None:
    want = json.loads(PINNED.read_text())["scan_series"]
    ss = series_set()
    items = [(key, values) for key, values in ss.counts.items() if key[0] != "_all"]
    got = rules.scan_many(items, ss, SETTINGS, scan=120)
    flat = [
        [f.kind, f.direction, f.start.isoformat(), f.observed, f.expected, f.score, f.p_value] for f in got
    ]
    assert_close(json.loads(json.dumps(flat)), [f for key, _ in items for f in want["/".join(key)]])
