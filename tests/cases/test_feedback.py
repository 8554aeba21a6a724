"""Feedback on alerts: stored on acknowledge/resolve, summarised per topic x kind, and (opt-in) tightening a
topic's sensitivity as a new, activated taxonomy version, logged and kept in the case history."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from nlp_service.anomaly.feedback import decide
from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker
from nlp_service.topics import versions
from tests.cases.conftest import TOPIC, add_alert

OTHER = "billing_payments"


def rate(client: TestClient, alert_id: str, feedback: str, action: str = "resolve") -> dict:
    r = client.post(f"/v1/alerts/{alert_id}/{action}", json={"feedback": feedback})
    assert r.status_code == 200, r.text
    return r.json()


def active_sensitivities(database_url: str) -> dict[str, str]:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as s:
            return versions.topic_sensitivities(db_session=s)
    finally:
        engine.dispose()


def test_feedback_summary_per_topic_and_kind(case_client: TestClient, database_url: str) -> None:
    spikes = [add_alert(database_url) for _ in range(3)]
    shift = add_alert(database_url, kind="level_shift")
    other = add_alert(database_url, topic=OTHER)
    add_alert(database_url)  # not rated
    rate(case_client, spikes[0], "useful", "acknowledge")
    for aid in spikes[1:]:
        rate(case_client, aid, "not_useful")
    rate(case_client, shift, "not_useful", "acknowledge")
    rate(case_client, other, "useful")
    body = case_client.get("/v1/alerts/feedback").json()
    rows = {(r["topic_id"], r["kind"]): r for r in body["items"]}
    assert set(rows) == {(TOPIC, "spike"), (TOPIC, "level_shift"), (OTHER, "spike")}
    spike = rows[(TOPIC, "spike")]
    assert (spike["useful"], spike["not_useful"], spike["rated"]) == (1, 2, 3)
    assert spike["useful_share"] == pytest.approx(1 / 3, abs=1e-4) and spike["topic_label"]
    assert rows[(TOPIC, "level_shift")]["useful_share"] == 0.0
    assert body["items"][0]["topic_id"] == TOPIC and body["items"][0]["kind"] == "spike"  # most rated first
    assert body["total"] == {"useful": 2, "not_useful": 3, "rated": 5, "useful_share": 0.4}
    only = case_client.get("/v1/alerts/feedback", params={"topic": OTHER}).json()
    assert [(r["topic_id"], r["useful"]) for r in only["items"]] == [(OTHER, 1)]
    assert case_client.get("/v1/alerts/feedback", params={"since": "yesterday"}).status_code == 422
    # tightening is opt-in: three not-useful votes changed no sensitivity
    assert active_sensitivities(database_url) == {}


@pytest.fixture
def tightening_client(case_settings: Settings, start_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = case_settings.model_copy(update={"feedback_tighten": True})
    with start_app(settings) as client:
        yield client


def test_not_useful_feedback_tightens_the_topic(
    tightening_client: TestClient, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = tightening_client
    ids = [add_alert(database_url) for _ in range(5)]
    rate(client, ids[0], "not_useful")
    rate(client, ids[1], "useful", "acknowledge")
    rate(client, ids[2], "not_useful")
    assert active_sensitivities(database_url) == {}  # 2 of the last 3: not yet
    with caplog.at_level(logging.INFO, logger="nlp_service.anomaly.feedback_flow"):
        rate(client, ids[3], "not_useful", "acknowledge")  # 3 not useful of the last 4
    assert active_sensitivities(database_url) == {TOPIC: "low"}  # from the global medium
    topic = client.get(f"/v1/topics/{TOPIC}").json()
    assert topic["sensitivity"] == "low"
    [version] = [v for v in client.get("/v1/topics/versions").json() if v["id"] == topic["version"]]
    assert version["active"] and "3 of the last 4 rated alerts" in version["change"]
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "feedback_tightened"]
    assert (record.topic_id, record.sensitivity_from, record.sensitivity_to) == (TOPIC, "medium", "low")
    entries = client.get(f"/v1/alerts/{ids[3]}/history").json()["entries"]
    assert [e["action"] for e in entries] == ["acknowledged", "sensitivity_tightened"]
    tightened = entries[1]
    assert tightened["actor"] == "system" and tightened["details"]["taxonomy_version"] == topic["version"]
    assert tightened["details"]["from"] == "medium" and tightened["details"]["to"] == "low"
    # the votes that tightened it do not count again: one more "not useful" changes nothing
    before = len(client.get("/v1/topics/versions").json())
    rate(client, ids[4], "not_useful")
    assert len(client.get("/v1/topics/versions").json()) == before
    assert active_sensitivities(database_url) == {TOPIC: "low"}


def test_decide_steps_down_one_preset_at_most() -> None:
    three_of_five = ["not_useful", "useful", "not_useful", "not_useful", "useful"]
    decision = decide(three_of_five, topic_id="t", current="high", not_useful=3, window=5)
    assert decision is not None and (decision.before, decision.after) == ("high", "medium")
    assert decide(three_of_five, topic_id="t", current="low", not_useful=3, window=5) is None  # floor
    assert decide(three_of_five[:2], topic_id="t", current="medium", not_useful=3, window=5) is None
    # only the newest `window` votes count
    old_bad = ["useful", "useful", "not_useful", "not_useful", "not_useful"]
    assert decide(old_bad, topic_id="t", current="medium", not_useful=3, window=4) is None
