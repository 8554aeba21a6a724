"""The joint test of the topics of one segment value (``anomaly.joint``): its p-value is the binomial tail of
the order statistics, calibrated on null p-values, and it turns a one-region surge whose topics each fall
short of the threshold into one incident (seeded scenario 3002 found no incident for it before)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from evaluation.anomaly_incidents import detect
from nlp_service.anomaly import joint
from nlp_service.anomaly.joint import MEMBER_P, Candidate, joint_members, joint_p_value
from nlp_service.anomaly.sensitivity import PRESETS
from nlp_service.anomaly.series import SeriesSet
from nlp_service.config import Settings
from nlp_service.incidents.scenarios import scenario


def test_joint_p_value_is_the_smallest_of_its_statistics_times_their_number() -> None:
    # m = 6 series: the binomial tails for k = 2..6 and the pair, each x 6 (Bonferroni over the choice)
    p, k, by_pair = joint_p_value([1.2e-3, 3.2e-4], m=6, pair=False)
    assert k == 2 and not by_pair and np.isclose(p, stats.binom.sf(1, 6, 1.2e-3) * 6)
    p4, k4, _ = joint_p_value([5.7e-3, 4.7e-6, 1.6e-3, 3.5e-4], m=6, pair=False)
    tails = [stats.binom.sf(k - 1, 6, q) * 6 for k, q in ((2, 3.5e-4), (3, 1.6e-3), (4, 5.7e-3))]
    assert np.isclose(p4, min(tails)) and k4 == 2 + int(np.argmin(tails))
    # the pair reads the strongest p-value too: one topic at 1e-9 and another at 2e-3
    strong = [1e-9, 2e-3]
    assert joint_p_value(strong, m=6, pair=False)[0] > 1e-4  # as two topics at 2e-3: short of medium
    p2, k2, by_pair = joint_p_value(strong, m=6)
    assert by_pair and k2 == 2 and np.isclose(p2, 6 * 5 * 1e-9 * 2e-3 * 6)
    assert joint_p_value([1.2e-3, 3.2e-4], m=6)[2]  # here the pair is smaller too
    assert joint_p_value([5.7e-3, 4.7e-6, 1.6e-3, 3.5e-4], m=6) == (min(tails), k4, False)  # not here
    assert joint_p_value([1e-9], m=6) == (1.0, 0, False)  # one series alone is its own test
    assert joint_p_value([0.009, 0.008, 0.007], m=80)[0] > 1e-3  # weak evidence among many topics


def test_joint_p_value_is_calibrated_on_null_p_values() -> None:
    rng = np.random.default_rng(7)
    m, alpha, n = 6, 0.01, 40_000
    draws = rng.uniform(size=(n, m))
    rejected = 0
    for row in draws:
        taking_part = row[row <= MEMBER_P]
        rejected += joint_p_value(taking_part, m)[0] <= alpha
    assert rejected / n <= alpha  # the test never rejects more often than its level (the pair included)


def test_a_surge_each_topic_short_of_the_threshold_is_one_incident(tmp_path: Path) -> None:
    sc = scenario(3002)  # us-east: billing and support up x3.3 for 12 hours
    surge = sc.events[0]
    (tmp_path / "off").mkdir()
    alone = {"alert_segments": ["region"], "alert_hour_windows": []}  # (hour windows find it too: apart)
    incidents, _ = detect(sc, tmp_path / "off", Settings(**alone, alert_joint_buckets=[]))
    assert not [i for i in incidents if i.segment_value == surge.region]
    (tmp_path / "on").mkdir()
    incidents, alerts = detect(sc, tmp_path / "on", Settings(**alone))
    (found,) = [i for i in incidents if i.segment_value == surge.region]
    assert len(found.topics) >= 2 and set(found.topics) <= set(surge.topics)
    joint = [a.explanation["joint"] for a in alerts if "joint" in (a.explanation or {})]
    assert joint and all(j["p_value"] <= 1e-4 and j["own_p_value"] <= MEMBER_P for j in joint)
    assert any(j["own_p_value"] > 1e-4 for j in joint)  # a topic that could not fire alone
    assert all(j["segment"] == f"region={surge.region}" and j["with_topics"] for j in joint)


def test_members_of_a_passing_joint_test_are_labelled_whether_or_not_they_fired_alone() -> None:
    start = datetime(2024, 3, 4, tzinfo=UTC)
    keys = [(t, "region", "eu-west") for t in ("app", "billing", "pricing", "support")]
    ss = SeriesSet("hour", start, 10, {k: np.zeros(10) for k in keys})
    th = PRESETS["medium"]  # p <= 1e-4

    def cand(topic: str, p: float, width: int = 1, expected: float = 5.0) -> Candidate:
        return Candidate((topic, "region", "eu-west"), 9, p, 20.0, expected, 4.0, width)

    fired_alone, short = cand("app", 1e-7), cand("billing", 2e-3)
    found = joint_members([fired_alone, short], ss, th)
    assert [c.key[0] for c, _ in found] == ["app", "billing"]  # the one that fired alone too
    assert all(j.p_value <= th.p_threshold for _, j in found)
    assert found[1][1].topics == ("app",) and found[1][1].own_p_value == 2e-3
    # windows of hours pass at the window test's stricter threshold
    windows = [cand("app", 1e-7, 6), cand("billing", 2e-3, 6)]
    assert joint_members(windows, ss, th, window_p_factor=0.01) == []
    assert len(joint_members(windows, ss, th, window_p_factor=1.0)) == 2
    # the pair statistic where the strong window rests on enough comments: 4 x 3 x 1e-7 x 2e-3 x 4 <= 1e-6
    busier = [cand("app", 1e-7, 6, 20.0), cand("billing", 2e-3, 6, 20.0)]
    found = joint_members(busier, ss, th, window_p_factor=0.01)
    assert len(found) == 2 and all(j.statistic == "pair" and j.p_value <= 1e-6 for _, j in found)


def test_a_night_surge_is_one_incident_when_its_topics_windows_are_tested_together(tmp_path: Path) -> None:
    sc = scenario(16)  # us-west: billing and support up x3.4 for 16 hours from Sunday 15h
    surge = sc.events[0]
    (tmp_path / "off").mkdir()
    settings = {"alert_segments": ["region"]}
    incidents, _ = detect(sc, tmp_path / "off", Settings(**settings, alert_joint_windows=False))
    assert not [i for i in incidents if i.segment_value == surge.region]  # support's two low hours alone
    (tmp_path / "on").mkdir()
    incidents, alerts = detect(sc, tmp_path / "on", Settings(**settings))
    (found,) = [i for i in incidents if i.segment_value == surge.region]
    assert set(found.topics) == set(surge.topics)
    joint = [a.explanation["joint"] for a in alerts if "joint" in (a.explanation or {})]
    assert {j["with_topics"][0] for j in joint} == set(surge.topics)  # each with the other
    assert all(j["bucket"] == "hour" and j["buckets"] in (3, 6, 12) for j in joint)  # windows of hours
    assert all(j["p_value"] <= 1e-6 for j in joint)  # as strict as a window alone


def test_windows_ending_a_few_hours_apart_are_tested_together_at_a_corrected_p_value() -> None:
    start = datetime(2024, 3, 4, tzinfo=UTC)
    keys = [(t, "region", "eu-west") for t in ("app", "billing", "pricing", "support")]
    ss = SeriesSet("hour", start, 12, {k: np.zeros(12) for k in keys})
    th = PRESETS["medium"]

    def window(topic: str, end: int, p: float, expected: float = 10.0) -> Candidate:
        return Candidate((topic, "region", "eu-west"), end, p, 30.0, expected, 5.0, 6)

    staggered = [window("app", 9, 1e-6), window("billing", 11, 4e-5), window("billing", 5, 1e-9)]
    assert joint_members(staggered, ss, th, window_p_factor=0.01) == []  # same last hour only: none
    found = joint_members(staggered, ss, th, window_p_factor=0.01, lag=2)
    # not billing's window ending at 5 (4 hours before app's)
    assert [(c.key[0], c.index) for c, _ in found] == [("app", 9), ("billing", 11)]
    (_, why), _ = found
    # each p-value x (lag + 1), then the pair's: m (m - 1) p_(1) p_(2), x m
    assert why.statistic == "pair" and np.isclose(why.p_value, 4 * 3 * (3 * 1e-6) * (3 * 4e-5) * 4)
    assert why.topics == ("billing",) and why.own_p_value == 1e-6
    assert joint_members(staggered, ss, th, window_p_factor=0.01, lag=1) == []  # 2 hours apart
    # windows ending in one hour are still tested as they are (x 3 each, these two would fail; the pair does
    # not take part: the strongest expected fewer than joint.PAIR_MIN_EXPECTED comments)
    aligned = [window("app", 9, 1e-6, 5.0), window("billing", 9, 1.5e-4, 5.0)]
    assert stats.binom.sf(1, 4, 3 * 1.5e-4) * 4 > 1e-6 >= stats.binom.sf(1, 4, 1.5e-4) * 4
    assert len(joint_members(aligned, ss, th, window_p_factor=0.01, lag=2)) == 2


def test_a_surge_whose_topics_start_hours_apart_is_one_incident(tmp_path: Path) -> None:
    sc = scenario(2022)  # eu-west: pricing and support up x3 for 9 hours from Thursday 22h, support later
    surge = sc.events[0]
    (tmp_path / "same_hour").mkdir()
    settings = {"alert_segments": ["region"]}
    incidents, _ = detect(sc, tmp_path / "same_hour", Settings(**settings, alert_joint_window_lag=0))
    assert not [i for i in incidents if i.segment_value == surge.region]
    (tmp_path / "lagged").mkdir()
    incidents, alerts = detect(sc, tmp_path / "lagged", Settings(**settings))
    (found,) = [i for i in incidents if i.segment_value == surge.region]
    assert set(found.topics) == set(surge.topics)
    joint = {a.topic_id: a.explanation["joint"] for a in alerts if "joint" in (a.explanation or {})}
    assert set(joint) == set(surge.topics)
    ends = {a.window_end for a in alerts if "joint" in (a.explanation or {})}
    assert len(ends) == 2  # their windows end in different hours


def test_a_surge_with_one_strong_and_one_weak_topic_is_one_incident(tmp_path: Path) -> None:
    sc = scenario(18013)  # us-west: billing and refunds up x3.2 for 9 hours from Tuesday 17h
    surge = sc.events[0]
    (tmp_path / "binomial").mkdir()
    settings = {"alert_segments": ["region"], "alert_joint_profile_windows": []}  # own-history tests alone
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(joint, "PAIR_MIN_EXPECTED", float("inf"))  # the pair never takes part
        incidents, _ = detect(sc, tmp_path / "binomial", Settings(**settings))
    assert not [i for i in incidents if i.segment_value == surge.region]  # billing alone: `low`
    (tmp_path / "pair").mkdir()
    incidents, alerts = detect(sc, tmp_path / "pair", Settings(**settings))
    (found,) = [i for i in incidents if i.segment_value == surge.region]
    assert set(found.topics) == set(surge.topics)
    why = {a.topic_id: a.explanation["joint"] for a in alerts if "joint" in (a.explanation or {})}
    assert set(why) == set(surge.topics)
    assert all(
        j["statistic"] == "pair" and j["p_value"] <= 1e-6 for j in why.values()
    )  # a window's threshold
    assert min(j["own_p_value"] for j in why.values()) < 1e-6 < max(j["own_p_value"] for j in why.values())
