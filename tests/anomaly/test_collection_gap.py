"""A collection gap (days with no comments at all) is missing data, not a drop: nothing fires from it, when
data resumes or in its aftermath; a real drop of one topic (other comments still arriving) still fires."""

from __future__ import annotations

import pytest

from evaluation.anomaly_cx import HISTORY, Case, replay
from nlp_service.anomaly.synthetic import Event, generate
from nlp_service.config import Settings

N = HISTORY + 60
GAP = (HISTORY + 20, HISTORY + 25)  # six days without any comment


def case(
    seed: int, *, topic_events: tuple[Event, ...] = (), others_gap: bool = True, down: bool = False
) -> Case:
    gap = (Event("gap", GAP[0], GAP[1], 0.0),)
    topic = generate(N, base=80.0, events=(*gap, *topic_events), seed=seed)
    others = generate(N, base=240.0, events=gap if others_gap else (), seed=seed + 1000)
    values = topic.series.values
    return Case(
        values, values + others.series.values, int(topic.series.timestamps[0]), gap, GAP if down else None
    )


@pytest.mark.parametrize("down", [False, True], ids=["service-scanning", "service-down-then-catch-up"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_collection_gap_raises_no_alert(seed: int, down: bool) -> None:
    alerts = replay(case(seed, down=down), Settings())
    assert alerts == []


def test_a_topic_going_silent_while_others_arrive_is_a_drop() -> None:
    alerts = replay(case(0, others_gap=False), Settings())
    assert any(a.kind == "drop" and a.start <= GAP[0] < a.end for a in alerts)


def test_a_spike_after_the_gap_still_fires() -> None:
    spike = Event("spike", GAP[1] + 10, GAP[1] + 10, 4.0)
    alerts = replay(case(0, topic_events=(spike,)), Settings())
    assert [(a.kind, a.start) for a in alerts] == [("spike", spike.start)]
