"""The weekly-pattern evaluation runs every family with the check off and on and reports both."""

from __future__ import annotations

from evaluation.anomaly_weekly import FAMILIES, evaluate_weekly, weekly_report


def test_every_family_off_and_on() -> None:
    r = evaluate_weekly(n_streams=3, seed=0)
    assert set(r) == {f"{f}.{c}" for f in FAMILIES for c in ("off", "on")}
    assert r["null.off"]["recall"] is None and 0 <= r["weekend_drop.on"]["recall"] <= 1
    assert r["null.on"]["false_per_stream"] <= r["null.off"]["false_per_stream"]
    assert r["null.on"]["false_spikes_per_stream"] <= r["null.off"]["false_spikes_per_stream"]
    assert 0 <= r["monday_spike.on"]["recall"] <= r["monday_spike.off"]["recall"] <= 1
    assert weekly_report(r, 3).count("\n|") == 2 + len(FAMILIES)
