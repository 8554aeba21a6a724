"""Sensitivity presets: one p-value threshold for every kind plus minimum effects, globally and per topic."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from evaluation.anomaly_null import evaluate_null
from nlp_service.anomaly.rules import scan_series
from nlp_service.anomaly.sensitivity import PRESETS, thresholds
from nlp_service.anomaly.series import SeriesSet
from nlp_service.config import Settings
from nlp_service.topics.taxonomy import TaxonomyError, parse_taxonomy


def spike_fires(peak: float, sensitivity: str) -> bool:
    rng = np.random.default_rng(3)
    values = rng.poisson(np.full(90, 20.0)).astype(float)
    values[-1] = peak
    ss = SeriesSet("day", datetime(2026, 1, 5, tzinfo=UTC), values.size, {("t", "all", "all"): values})
    th = thresholds(Settings(), sensitivity)
    return any(
        f.kind == "spike" for f in scan_series(("t", "all", "all"), values, ss, Settings(), scan=1, th=th)
    )


def test_presets_are_ordered_from_strict_to_sensitive() -> None:
    low, medium, high = PRESETS["low"], PRESETS["medium"], PRESETS["high"]
    assert low.p_threshold < medium.p_threshold < high.p_threshold
    assert low.min_ratio > medium.min_ratio > high.min_ratio
    assert low.min_relative_change > medium.min_relative_change > high.min_relative_change


def test_a_moderate_spike_fires_at_high_sensitivity_only() -> None:
    assert spike_fires(38.0, "high") and not spike_fires(38.0, "low")
    assert all(spike_fires(90.0, s) for s in PRESETS)  # a 4x spike fires at every sensitivity


def test_topic_preset_wins_and_p_override_applies() -> None:
    settings = Settings(alert_sensitivity="low")
    assert thresholds(settings) == PRESETS["low"]
    assert thresholds(settings, "high") == PRESETS["high"]
    assert thresholds(settings, None) == PRESETS["low"]
    pinned = Settings(alert_p_threshold=0.01)
    assert thresholds(pinned, "low").p_threshold == 0.01 and thresholds(pinned, "low").min_ratio == 2.0


def test_taxonomy_topics_carry_a_sensitivity() -> None:
    topic = {"id": "tax", "name": "Tax", "description": "sales tax", "sensitivity": "high"}
    assert parse_taxonomy({"topics": [topic]}).topics[0].sensitivity == "high"
    with pytest.raises(TaxonomyError, match="sensitivity"):
        parse_taxonomy({"topics": [{**topic, "sensitivity": "extreme"}]})


def test_null_evaluation_reports_every_preset() -> None:
    out = evaluate_null(n_series=2, n=70, history=56)
    assert out["null.series_days"] == 2 * 15
    for preset in PRESETS:
        assert out[f"null.{preset}.poisson"] >= 0.0 and out[f"null.{preset}.overdispersed"] >= 0.0
