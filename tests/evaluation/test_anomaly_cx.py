"""CX-like case families and their alert-level scoring (evaluation/anomaly_cx.py), no datasets."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.anomaly_cx import (
    FAMILIES,
    HISTORY,
    Alert,
    Case,
    Tally,
    cx_metrics,
    evaluate_cx,
    make_case,
    replay,
)
from nlp_service.anomaly.synthetic import Event, generate
from nlp_service.config import Settings


def test_new_event_kinds_shape_the_mean_and_are_not_reportable() -> None:
    events = (Event("drift", 20, 40, 2.0), Event("gap", 50, 52, 0.0), Event("holiday", 60, 60, 0.5))
    s = generate(80, base=100.0, events=events, weekly_amplitude=0.0)
    flat = generate(80, base=100.0, weekly_amplitude=0.0)
    ratio = s.mean / flat.mean
    assert (
        ratio[19] == pytest.approx(1.0)
        and ratio[30] == pytest.approx(1.5)
        and ratio[45] == pytest.approx(2.0)
    )
    assert (s.series.values[50:53] == 0).all() and ratio[60] == pytest.approx(1.0)  # holiday x0.5 on x2
    assert not any(ev.reportable for ev in events) and Event("spike", 1, 1, 3.0).reportable


@pytest.mark.parametrize("family", FAMILIES)
def test_families_have_their_traits(family: str) -> None:
    case = make_case(family, np.random.default_rng(5))
    kinds = [ev.kind for ev in case.events]
    assert case.values.size == case.total.size and (case.total >= case.values).all()
    assert all(ev.start >= HISTORY for ev in case.events)  # nothing inside the first history
    nuisance = {"weekly": [], "holiday": ["holiday", "holiday"], "drift": ["drift"]}.get(family, ["gap"])
    assert [k for k in kinds if k in ("holiday", "drift", "gap")] == nuisance
    if family.startswith("gap"):
        gap = next(ev for ev in case.events if ev.kind == "gap")
        assert (case.total[gap.start : gap.end + 1] == 0).all()
        assert (case.down is not None) == (family == "gap")


def test_tally_counts_true_false_and_nuisance_alerts() -> None:
    case = Case(np.zeros(100), np.zeros(100), 0, (Event("spike", 70, 70, 4.0), Event("holiday", 80, 81, 0.3)))
    alerts = [
        Alert("spike", "up", 70, 71),  # true
        Alert("drop", "down", 70, 71),  # wrong direction: false (not in a holiday)
        Alert("drop", "down", 80, 82),  # false, from the holiday
    ]
    t = Tally()
    t.add(case, alerts, first=60)
    m = t.metrics()
    assert (m["alerts"], m["false_alerts"], m["events"]) == (3, 2, 1)
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == 1.0
    assert m["false_alerts_per_30d"] == pytest.approx(30 * 2 / 40)
    assert (m["nuisance_events_alerted"], m["nuisance_alerts"]) == (1, 1)


def test_replay_finds_a_spike_as_one_alert() -> None:
    spike = Event("spike", HISTORY + 10, HISTORY + 11, 4.0)  # two buckets: one alert
    s = generate(HISTORY + 30, base=60.0, events=(spike,), seed=3)
    v = s.series.values
    alerts = replay(Case(v, 4 * v, int(s.series.timestamps[0]), (spike,)), Settings())
    assert [(a.kind, a.start, a.end) for a in alerts] == [("spike", spike.start, spike.end + 1)]


def test_evaluate_cx_reports_every_metric_per_family() -> None:
    out = evaluate_cx(n_series=1, families=("weekly", "drift"))
    metrics = cx_metrics(out)
    for fam in ("weekly", "drift"):
        assert 0.0 <= metrics[f"synthetic_cx.{fam}.recall"] <= 1.0
        assert metrics[f"synthetic_cx.{fam}.false_alerts_per_30d"] >= 0.0
    assert metrics["synthetic_cx.weekly.events"] == 4 and metrics["synthetic_cx.drift.nuisance_events"] == 1
