"""Property and unit tests of the pure anomaly detectors (fixtures are generated here, no datasets)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlp_service.anomaly.detectors import (
    ChangePoint,
    Detector,
    PeltChangePointDetector,
    SeasonalSpikeDetector,
    Series,
    Spike,
    detect_series,
    escalations,
    merge_episodes,
    refractory_alerts,
)
from nlp_service.anomaly.synthetic import DAY, WEEK, Event, generate

DETECTORS = [
    pytest.param(lambda: SeasonalSpikeDetector(), id="seasonal"),
    pytest.param(lambda: PeltChangePointDetector(), id="pelt"),
]
PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

count_series = st.builds(
    lambda base, n, seed: generate(n, base=base, seed=seed).series,
    base=st.floats(0.0, 300.0),
    n=st.integers(0, 200),
    seed=st.integers(0, 2**31 - 1),
)


def indices(result: tuple[ChangePoint, ...] | tuple[Spike, ...]) -> list[int]:
    return [r.index for r in result]


@pytest.mark.parametrize("make", DETECTORS)
@PROPS
@given(series=count_series)
def test_results_sorted_unique_inside(make, series: Series) -> None:
    idx = indices(make().fit(series).predict())
    assert idx == sorted(set(idx))
    assert all(0 <= i < len(series) for i in idx)
    assert all(0 < i for i in idx) or not isinstance(make(), PeltChangePointDetector)


@pytest.mark.parametrize("make", DETECTORS)
@PROPS
@given(value=st.floats(0.0, 1e4), n=st.integers(0, 400))
def test_constant_series_gives_nothing(make, value: float, n: int) -> None:
    series = Series(DAY * np.arange(n, dtype=np.int64), np.full(n, float(round(value))), DAY)
    assert make().fit(series).predict() == ()


@pytest.mark.parametrize("make", DETECTORS)
@settings(max_examples=15, deadline=None, derandomize=True)  # null data: keep it reproducible
@given(seed=st.integers(0, 2**31 - 1), base=st.floats(20.0, 300.0))
def test_null_poisson_series_gives_nothing(make, seed: int, base: float) -> None:
    series = generate(120, base=base, seed=seed).series
    assert make().fit(series).predict() == ()


@pytest.mark.parametrize("make", DETECTORS)
@PROPS
@given(series=count_series, weeks=st.integers(-2000, 2000))
def test_shift_by_whole_weeks_changes_only_timestamps(make, series: Series, weeks: int) -> None:
    shifted = Series(series.timestamps + weeks * WEEK, series.values, series.bucket_seconds)
    a, b = make().fit(series).predict(), make().fit(shifted).predict()
    assert indices(a) == indices(b)
    assert all(y.timestamp - x.timestamp == weeks * WEEK for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("make", DETECTORS)
def test_contract_fit_returns_self_and_predict_needs_fit(make) -> None:
    det: Detector = make()
    with pytest.raises(RuntimeError):
        det.predict()
    series = generate(60, base=30.0).series
    assert det.fit(series) is det


def test_injected_4x_spike_is_found() -> None:
    syn = generate(200, base=40.0, events=(Event("spike", 150, 150, 4.0),), seed=3)
    spikes = SeasonalSpikeDetector().fit(syn.series).predict()
    assert [s.index for s in spikes if s.kind == "spike"] == [150]
    hit = spikes[0]
    assert hit.observed > 3 * hit.expected and hit.p_value < 1e-4 and hit.score > 0


def test_latest_bucket_matches_streaming() -> None:
    syn = generate(120, base=40.0, events=(Event("spike", 119, 119, 4.0),), seed=4)
    det = SeasonalSpikeDetector()
    latest = det.fit(syn.series, latest_only=True).predict_latest()
    full = SeasonalSpikeDetector().fit(syn.series).predict()
    assert latest is not None and latest == full[-1] and latest.index == 119


def test_small_counts_are_not_alerts() -> None:
    values = np.ones(100)
    values[-1] = 3.0  # 1 -> 3 comments: tripled but tiny
    series = Series(DAY * np.arange(100, dtype=np.int64), values, DAY)
    assert SeasonalSpikeDetector().fit(series).predict() == ()
    assert detect_series(Series.from_arrays(series.timestamps, values, DAY)).spikes == ()


def test_drop_is_found() -> None:
    syn = generate(150, base=100.0, events=(Event("drop", 120, 120, 0.05),), seed=5)
    spikes = SeasonalSpikeDetector().fit(syn.series).predict()
    assert [(s.index, s.kind) for s in spikes] == [(120, "drop")]


@pytest.mark.parametrize("factor,kind", [(2.0, "level_up"), (0.5, "level_down")])
def test_level_shift_found_near_true_index(factor: float, kind: str) -> None:
    syn = generate(365, base=50.0, events=(Event("shift", 200, 364, factor),), seed=6)
    cps = PeltChangePointDetector().fit(syn.series).predict()
    assert len(cps) == 1
    cp = cps[0]
    assert abs(cp.index - 200) <= 2 and cp.kind == kind
    assert cp.after_mean / cp.before_mean == pytest.approx(factor, rel=0.2)


def test_short_spike_is_not_a_level_shift() -> None:
    syn = generate(365, base=50.0, events=(Event("spike", 200, 202, 4.0),), seed=7)
    assert PeltChangePointDetector().fit(syn.series).predict() == ()


def test_episodes_merge_consecutive_buckets() -> None:
    def sp(i: int, score: float, kind: str = "spike") -> Spike:
        return Spike(i, i * DAY, 10.0, 1.0, score, 1e-6, kind)  # type: ignore[arg-type]

    eps = merge_episodes([sp(5, 1.0), sp(6, 3.0), sp(7, 2.0), sp(9, 1.0), sp(6, 2.0, "drop")])
    assert [(e.start, e.end, e.peak, e.kind) for e in eps] == [
        (5, 7, 6, "spike"),
        (6, 6, 6, "drop"),
        (9, 9, 9, "spike"),
    ]
    assert [(e.start, e.end) for e in merge_episodes([sp(5, 1), sp(7, 1)], max_gap=2)] == [(5, 7)]
    assert merge_episodes([]) == []


def test_multi_bucket_spike_is_one_episode() -> None:
    syn = generate(200, base=60.0, events=(Event("spike", 150, 152, 4.0),), seed=8)
    res = detect_series(Series.from_arrays(syn.series.timestamps, syn.series.values, DAY))
    assert [(e.start, e.end, e.kind) for e in res.episodes] == [(150, 152, "spike")]


def test_escalations_keep_only_new_records() -> None:
    s = np.array([0.0, 5.0, 4.0, 6.0, 0.0, 0.0, 3.0])
    assert escalations(s, cooldown=2).tolist() == [0.0, 5.0, 0.0, 6.0, 0.0, 0.0, 3.0]
    assert escalations(s, cooldown=0).tolist() == s.tolist()


def test_series_from_arrays_fills_gaps_and_accepts_datetime64() -> None:
    ts = np.array(["2024-01-01", "2024-01-03", "2024-01-03"], dtype="datetime64[D]")
    s = Series.from_arrays(ts, [1, 2, 3], DAY)
    assert s.values.tolist() == [1.0, 0.0, 5.0]
    assert np.diff(s.timestamps).tolist() == [DAY, DAY]
    with pytest.raises(ValueError):
        Series(np.array([0, 10]), np.array([1.0, 2.0]), DAY)


def test_missing_values_are_ignored() -> None:
    syn = generate(200, base=40.0, events=(Event("spike", 150, 150, 4.0),), seed=9)
    values = syn.series.values.copy()
    values[100:110] = np.nan
    series = Series(syn.series.timestamps, values, DAY)
    spikes = SeasonalSpikeDetector().fit(series).predict()
    assert [s.index for s in spikes] == [150]
    assert PeltChangePointDetector().fit(series).predict() == ()


def test_refractory_alerts_snooze_after_each_alert() -> None:
    s = np.array([0.0, 5.0, 6.0, 7.0, 0.0, 9.0, 0.0, 0.0, 5.0, np.nan])
    assert refractory_alerts(s, 5.0, refractory=0).tolist() == [1, 2, 3, 5, 8]
    assert refractory_alerts(s, 5.0, refractory=2).tolist() == [1, 5, 8]
    assert refractory_alerts(s, 5.0, refractory=3).tolist() == [1, 5]
    assert refractory_alerts(s, 100.0, refractory=3).size == 0
    with pytest.raises(ValueError):
        refractory_alerts(s, 1.0, refractory=-1)


@PROPS
@given(
    scores=st.lists(st.floats(0.0, 10.0), max_size=300),
    threshold=st.floats(0.1, 10.0),
    refractory=st.integers(0, 30),
)
def test_refractory_alerts_properties(scores: list[float], threshold: float, refractory: int) -> None:
    s = np.array(scores)
    alerts = refractory_alerts(s, threshold, refractory=refractory)
    crossings = np.flatnonzero(s >= threshold)
    assert alerts.tolist() == sorted(set(alerts.tolist()))
    assert set(alerts.tolist()) <= set(crossings.tolist())
    assert np.all(np.diff(alerts) > refractory)
    # every crossing is an alert or falls inside the snooze of an earlier alert
    for i in crossings:
        assert i in alerts or np.any((alerts < i) & (i - alerts <= refractory))


def nab_style_alerts(series: Series, threshold: float = 4.0) -> list[int]:
    """The NAB evaluation's path in product units: |z| -> escalations -> refractory alerts."""
    raw = SeasonalSpikeDetector().fit(series).scores(gated=False)
    return refractory_alerts(escalations(raw, cooldown=7), threshold, refractory=3).tolist()


@PROPS
@given(series=count_series, weeks=st.integers(-2000, 2000))
def test_alert_path_sorted_inside_and_shift_invariant(series: Series, weeks: int) -> None:
    idx = nab_style_alerts(series)
    assert idx == sorted(set(idx)) and all(0 <= i < len(series) for i in idx)
    shifted = Series(series.timestamps + weeks * WEEK, series.values, series.bucket_seconds)
    assert nab_style_alerts(shifted) == idx


@PROPS
@given(value=st.floats(0.0, 1e4), n=st.integers(0, 400))
def test_alert_path_constant_series_gives_nothing(value: float, n: int) -> None:
    series = Series(DAY * np.arange(n, dtype=np.int64), np.full(n, float(round(value))), DAY)
    assert nab_style_alerts(series, threshold=1e-9) == []
