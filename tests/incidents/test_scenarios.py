"""The incident scenarios are seeded and carry their events; the evaluation finds a surge as one incident."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.anomaly_incidents import evaluate_incidents
from nlp_service.incidents.scenarios import REGIONS, TOPICS, scenario


def test_scenarios_are_seeded_and_carry_their_events() -> None:
    a, b = scenario(3), scenario(3)
    assert np.array_equal(a.counts, b.counts) and a.events == b.events
    assert a.counts.shape == (len(TOPICS), len(REGIONS), 28 * 24)
    surge = a.events[0]
    assert surge.kind == "surge" and 2 <= len(surge.topics) <= 4
    r = REGIONS.index(surge.region)
    for topic in surge.topics:
        t = TOPICS.index(topic)
        inside = a.counts[t, r, surge.start + 3 : surge.end - 3].mean()
        before = a.counts[t, r, surge.start - 7 * 24 : surge.start - 24].mean()
        assert inside > 2 * before
    null = scenario(4, surge=False)
    assert null.events == ()


@pytest.mark.slow
def test_evaluation_scores_incidents() -> None:
    r = evaluate_incidents(n_scenarios=2, n_null=1, seed=0)
    assert r["scenarios"] == 2 and r["incidents"] >= 1
    assert 0 <= r["precision"] <= 1 and r["surge_recall"] > 0
