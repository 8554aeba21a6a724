"""A daily series with three earlier weeks: last week's surge on this weekday is not averaged into this
week's expectation (it was: the normal Saturday a week after a Saturday surge fired a false drop in two
topics of the surge's region, which then opened a false incident; incident scenario 1009, seed 1)."""

from __future__ import annotations

import numpy as np

from nlp_service.anomaly.rules import scan_series
from nlp_service.anomaly.series import SeriesSet
from nlp_service.config import Settings
from nlp_service.incidents.scenarios import REGIONS, TOPICS, scenario


def test_a_normal_day_a_week_after_a_surge_is_not_a_drop() -> None:
    sc = scenario(1009)  # a surge in us-west on day 19 (a Saturday) of 28
    (surge,) = sc.events
    for topic in ("app", "billing"):
        key = (topic, "region", surge.region)
        hourly = sc.counts[TOPICS.index(topic), REGIONS.index(surge.region)]
        values = hourly.reshape(28, 24).sum(axis=1).astype(np.float64)
        ss = SeriesSet("day", sc.start, values.size, {key: values})
        found = [
            (f.kind, (f.start - ss.start).days) for f in scan_series(key, values, ss, Settings(), scan=14)
        ]
        assert ("spike", 19) in found
        assert not [f for f in found if f[0] == "drop"], found  # day 26, the next Saturday, is normal
