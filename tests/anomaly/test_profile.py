"""The profile model of one segment value's topics (``detectors.profile``) and its joint test
(``anomaly.joint``, baseline ``profile``): expectations that follow the weekend and the hour of day from the
segment value's total, p-values calibrated on null data, and the weak weekend-evening surge the own-history
windows missed (seed 10's scenario 15, a miss of ``python -m evaluation incidents`` before) found as one
incident."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from evaluation.anomaly_incidents import detect
from nlp_service.anomaly.detectors.negbin import nb_tail
from nlp_service.anomaly.detectors.profile import MIN_DAYS, profile_expectation
from nlp_service.anomaly.detectors.windows import rolling_sum
from nlp_service.anomaly.joint import MEMBER_P, profile_candidates
from nlp_service.anomaly.sensitivity import PRESETS
from nlp_service.anomaly.series import SeriesSet
from nlp_service.anomaly.synthetic import seasonal_mean
from nlp_service.config import Settings
from nlp_service.incidents.scenarios import scenario
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS

HOUR = 3600
DAYS = 28


def _region(seed: int, bases: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson topic series of one region (the generator's weekend dip and daytime peak) with their true
    means, and the region's total (the topics and as many comments again of no topic)."""
    rng = np.random.default_rng(seed)
    means = np.vstack([seasonal_mean(DAYS * 24, base=b, bucket_seconds=HOUR)[1] for b in bases])
    topics = rng.poisson(means).astype(np.float64)
    total = topics.sum(axis=0) + rng.poisson(means.sum(axis=0))
    return topics, means, total


def test_the_expectation_follows_the_weekend_and_the_hour_of_day_from_the_total() -> None:
    topics, means, total = _region(1, (1.0, 2.5, 6.0))
    mu, alpha = profile_expectation(topics, total, first_hour=0)
    assert np.isnan(mu[:, : MIN_DAYS * 24]).all() and np.isfinite(mu[:, MIN_DAYS * 24 :]).all()
    ratio = mu[:, MIN_DAYS * 24 :] / means[:, MIN_DAYS * 24 :]
    assert abs(float(np.median(ratio)) - 1.0) < 0.08
    # Saturday and Sunday evenings (the weekend dip x the evening's fall): as expected, not a weekday's
    hours = np.arange(DAYS * 24)
    weekend = (hours >= MIN_DAYS * 24) & ((hours // 24) % 7 >= 5) & (hours % 24 >= 17) & (hours % 24 <= 22)
    assert abs(float(np.median(mu[:, weekend] / means[:, weekend])) - 1.0) < 0.12
    assert ((alpha[:, MIN_DAYS * 24 :] > 0) & (alpha[:, MIN_DAYS * 24 :] < 0.2)).all()
    assert alpha[0, -1] > alpha[2, -1]  # a topic's level read from fewer comments is trusted less
    # the same series from 05:00 on the first day: the same expectations once the history is whole days
    mu_later, _ = profile_expectation(topics[:, 5:], total[5:], first_hour=5)
    assert mu_later.shape == (3, DAYS * 24 - 5) and np.allclose(mu_later[:, -72:], mu[:, -72:])
    # a scan of the newest buckets only: the same expectations from the day holding ``since``, none before
    mu_since, alpha_since = profile_expectation(topics, total, first_hour=0, since=20 * 24 + 5)
    assert np.isnan(mu_since[:, : 20 * 24]).all()
    assert np.allclose(mu_since[:, 20 * 24 :], mu[:, 20 * 24 :]) and np.allclose(
        alpha_since[:, 20 * 24 :], alpha[:, 20 * 24 :]
    )


def test_missing_buckets_have_no_expectation() -> None:
    topics, _, total = _region(2, (3.0, 3.0))
    topics[1, 400:410] = np.nan
    mu, _ = profile_expectation(topics, total, first_hour=0)
    assert np.isnan(mu[1, 400:410]).all() and np.isfinite(mu[0, 400:410]).all()


def test_a_topic_without_comments_the_week_before_has_no_expectation() -> None:
    """Its level is unknown (the profile supplies the shape, the topic its level): an expectation of 0 gave a
    burst p 0 and an infinite score in the joint test."""
    topics, _, total = _region(3, (3.0, 3.0))
    topics[1, : 20 * 24] = 0.0  # no comments for 20 days, then the usual ones
    mu, alpha = profile_expectation(topics, total, first_hour=0)
    assert np.isnan(mu[1, MIN_DAYS * 24 : 20 * 24]).all()  # no comment in the week before these days
    assert np.isfinite(mu[1, 27 * 24 :]).all() and (mu[1, 27 * 24 :] > 0).all()  # a week of them before
    assert np.isfinite(mu[0, MIN_DAYS * 24 :]).all() and np.isfinite(alpha[0, MIN_DAYS * 24 :]).all()


def test_window_p_values_are_calibrated_on_null_series() -> None:
    below = tested = 0
    for seed in range(6):
        topics, _, total = _region(10 + seed, (1.5, 3.0, 5.0, 2.0))
        mu, alpha = profile_expectation(topics, total, first_hour=0)
        for w in (3, 6, 12):
            x, m, a = rolling_sum(topics, w), rolling_sum(mu, w), rolling_sum(alpha, w) / w
            ok = np.isfinite(m)
            p = nb_tail(x, np.where(ok, m, 1.0), np.where(ok, a, 0.0), ok, upper=True)
            below += int((p[ok] <= MEMBER_P).sum())
            tested += int(ok.sum())
    assert tested > 20_000 and below / tested <= MEMBER_P * 1.1  # no more small p-values than chance


def test_candidates_are_windows_of_a_segment_value_with_a_total() -> None:
    topics, _, total = _region(3, (2.0, 2.0))
    topics[0, -6:] += 25  # a window of six hours, 25 comments up
    start = datetime(2024, 1, 1, tzinfo=UTC)
    keys = [("billing", "region", "eu-west"), ("support", "region", "eu-west")]
    counts = {keys[0]: topics[0], keys[1]: topics[1], (ALL_TOPICS, "region", "eu-west"): total}
    counts[("billing", ALL_SEGMENT, ALL_SEGMENT)] = topics[0] * 2  # topic totals are never tested jointly
    counts[("billing", "region", "apac")] = topics[0] * 2  # nor a segment value without its total
    ss = SeriesSet("hour", start, DAYS * 24, counts)
    found = profile_candidates(ss, 12, (3, 6), PRESETS["medium"], min_count=10.0)
    assert found and {c.key for c in found} == {keys[0]}
    assert all(c.baseline == "profile" and c.p_value <= MEMBER_P and c.width in (3, 6) for c in found)
    assert max(c.index for c in found) == DAYS * 24 - 1
    six = [c for c in found if c.width == 6 and c.index == DAYS * 24 - 1]
    assert six and six[0].observed == topics[0, -6:].sum() and six[0].observed - six[0].expected >= 20


def test_a_weak_weekend_evening_surge_is_one_incident_against_the_profile(tmp_path: Path) -> None:
    sc = scenario(10015)  # eu-west: billing and support x3.5 for 7 hours from Saturday 17h
    surge = sc.events[0]
    (tmp_path / "off").mkdir()
    off = Settings(alert_segments=["region"], alert_joint_profile_windows=[])
    incidents, _ = detect(sc, tmp_path / "off", off)
    assert not [i for i in incidents if i.segment_value == surge.region]  # the miss, before
    (tmp_path / "on").mkdir()
    incidents, alerts = detect(sc, tmp_path / "on", Settings(alert_segments=["region"]))
    (found,) = [i for i in incidents if i.segment_value == surge.region]
    assert set(found.topics) == set(surge.topics)
    joint = [a.explanation["joint"] for a in alerts if "joint" in (a.explanation or {})]
    assert joint and all("profile" in j["baseline"] and j["p_value"] <= 1e-6 for j in joint)
    assert {j["with_topics"][0] for j in joint} == set(surge.topics)
