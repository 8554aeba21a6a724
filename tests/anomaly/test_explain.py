"""The explanation pieces as pure functions: over-indexing segments, NPS impact, representatives, severity."""

from __future__ import annotations

import numpy as np
import pytest

from nlp_service.anomaly import explain
from nlp_service.insights.service import make_nps


def test_one_region_carrying_the_spike_over_indexes() -> None:
    baseline = {"eu-west": 26, "us-east": 24, "us-west": 17, "apac": 15, "latam": 9}
    window = {"eu-west": 66, "us-east": 3, "us-west": 2, "apac": 2, "latam": 1}
    out = explain.over_indexing("region", window, baseline)
    assert [o.value for o in out] == ["eu-west"]
    top = out[0]
    assert top.field == "region" and top.window_count == 66
    assert top.window_share == pytest.approx(66 / 74)
    assert top.baseline_share == pytest.approx(27 / 96)  # add-one smoothing over 5 values
    assert top.lift > 3 and top.excess_share == pytest.approx(1.0)
    assert top.to_dict()["value"] == "eu-west"


def test_an_unchanged_mix_or_an_empty_window_over_indexes_nothing() -> None:
    baseline = {"a": 50, "b": 30, "c": 20}
    assert explain.over_indexing("region", {"a": 10, "b": 6, "c": 4}, baseline) == []
    assert explain.over_indexing("region", {}, baseline) == []
    assert explain.over_indexing("region", {"a": 0}, {}) == []


def test_a_value_new_in_the_window_and_two_sharing_the_excess() -> None:
    baseline = {"a": 40, "b": 40, "c": 40}
    window = {"a": 5, "b": 30, "c": 5, "new": 20}
    out = explain.over_indexing("touchpoint", window, baseline)
    assert {o.value for o in out} == {"b", "new"}
    assert sum(o.excess_share for o in out) == pytest.approx(1.0)
    assert out[0].value == "new"  # largest excess first (its smoothed baseline share is tiny)


def test_a_fall_is_carried_by_the_values_whose_share_fell() -> None:
    """A drop of a topic's total carried by one region: counted by their rise, the regions that fell least
    were named (scenario 14021: billing and app totals down at Saturday midnight, named eu-north)."""
    baseline = {"eu-west": 30, "eu-north": 20, "us-east": 30, "us-west": 20}
    window = {"eu-west": 6, "eu-north": 19, "us-east": 5, "us-west": 4}  # all fell, eu-north least
    assert [o.value for o in explain.over_indexing("region", window, baseline)] == ["eu-north"]
    down = explain.over_indexing("region", window, baseline, direction="down")
    assert [o.value for o in down] == ["us-east", "eu-west"]  # largest shortfall first (us-west: < 3)
    assert all(o.excess < 0 and o.lift <= 1 / 1.5 for o in down)
    assert all(0 < o.excess_share < 1 for o in down)
    unchanged = {"a": 10, "b": 6, "c": 4}
    assert explain.over_indexing("region", unchanged, {"a": 50, "b": 30, "c": 20}, direction="down") == []


def test_nps_impact_uses_the_insights_nps() -> None:
    window = make_nps(10, 1, 7)  # -60
    baseline = make_nps(100, 40, 30)  # +10
    impact = explain.nps_impact(window, baseline)
    assert impact["window"]["nps"] == -60 and impact["baseline"]["nps"] == 10
    assert impact["delta"] == -70
    assert explain.nps_impact(make_nps(0, 0, 0), baseline)["delta"] is None


def test_shift() -> None:
    assert explain.shift(0.75, 0.5) == {"window": 0.75, "baseline": 0.5, "delta": 0.25}
    assert explain.shift(None, 0.5)["delta"] is None


def test_representatives_are_nearest_the_centroid_and_not_copies() -> None:
    rng = np.random.default_rng(0)
    topic = np.zeros(16)
    topic[0] = 1.0
    cluster = topic + 0.3 * rng.normal(size=(20, 16))
    outliers = rng.normal(size=(3, 16)) * 3
    copies = np.vstack([cluster[0]] * 4)
    x = np.vstack([cluster, outliers, copies])
    picks = explain.representatives(x, 5)
    idx = [i for i, _ in picks]
    assert len(idx) == 5 and len(set(idx)) == 5
    assert all(i < 20 or i >= 23 for i in idx)  # never an outlier
    assert sum(i == 0 or i >= 23 for i in idx) <= 1  # at most one of the identical rows
    sims = [s for _, s in picks]
    assert sims == sorted(sims, reverse=True)
    assert explain.representatives(np.zeros((0, 16)), 5) == []
    assert len(explain.representatives(x[:2], 5)) == 2
    # when only copies remain, they fill the quota rather than returning fewer
    assert len(explain.representatives(copies, 3)) == 3


@pytest.mark.parametrize(
    ("score", "excess", "expected"),
    [
        (3.0, 500.0, "low"),  # weak evidence, whatever the volume
        (30.0, 5.0, "low"),  # strong evidence, tiny volume
        (7.0, 60.0, "medium"),
        (12.0, 60.0, "high"),
        (12.0, 25.0, "medium"),
        (20.0, 250.0, "critical"),
        (-20.0, -250.0, "critical"),  # drops use magnitudes
    ],
)
def test_severity_is_the_weaker_of_score_and_volume(score: float, excess: float, expected: str) -> None:
    assert explain.severity(score, excess) == expected


def test_max_severity() -> None:
    assert explain.max_severity("low", "high") == "high"
    assert explain.max_severity("critical", "medium") == "critical"
