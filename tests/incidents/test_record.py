"""Incidents in the detection run's write phase, on the real database (SQLite and PostgreSQL): alerts join or
open incidents with their reasons, events go to the outbox, quiet incidents resolve themselves, a resolved
incident is never reopened, and the manual lifecycle cascades to the member alerts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.anomaly.tables import Alert
from nlp_service.cases import service as cases
from nlp_service.config import Settings
from nlp_service.errors import Conflict, NotFound
from nlp_service.incidents import grouping, record, service
from nlp_service.incidents.tables import Incident, IncidentMember
from nlp_service.webhooks.tables import WebhookDelivery, WebhookEvent, WebhookSubscription

T0 = datetime(2024, 3, 14, tzinfo=UTC)
H = timedelta(hours=1)
SETTINGS = Settings()


def make_alert(
    topic: str,
    start_h: float,
    hours: float = 3,
    *,
    segment: tuple[str, str] = ("region", "eu-west"),
    kind: str = "spike",
    direction: str = "up",
    observed: float = 60.0,
    severity: str = "medium",
    explanation: dict[str, Any] | None = None,
) -> Alert:
    start = T0 + start_h * H
    return Alert(
        id=f"alr_{uuid.uuid4().hex}",
        topic_id=topic,
        segment=segment[0],
        segment_value=segment[1],
        kind=kind,
        direction=direction,
        status="new",
        severity=severity,
        bucket="hour",
        window_start=start,
        window_end=start + hours * H,
        peak_at=start,
        baseline=10.0,
        observed=observed,
        score=12.0,
        p_value=1e-9,
        buckets_fired=1,
        explanation=explanation or {"summary": f"{topic} spiked"},
        revision=1,
        created_at=T0,
        updated_at=T0,
    )


def run(s: Session, alerts: list[Alert], at: datetime) -> record.Recorded:
    s.add_all(alerts)
    s.flush()
    labels = {"pricing": "Pricing"}
    return record.record(db_session=s, settings=SETTINGS, alerts=alerts, at=at, now=at, topic_labels=labels)


def events(s: Session) -> list[dict[str, Any]]:
    rows = s.scalars(select(WebhookEvent.body).order_by(WebhookEvent.created_at, WebhookEvent.id))
    return [json.loads(b) for b in rows]


def subscribe(s: Session, **filters: Any) -> None:
    s.add(
        WebhookSubscription(
            id=f"wh_{uuid.uuid4().hex}",
            url="http://127.0.0.1:9/hook",
            description="",
            event_types=["incident.created", "incident.updated", "incident.resolved", "alert.resolved"],
            enabled=True,
            secret="x",
            created_at=T0,
            updated_at=T0,
            **filters,
        )
    )
    s.flush()


def test_one_region_across_topics_is_one_incident(db_sessions: sessionmaker[Session]) -> None:
    topic_level = make_alert(
        "pricing",
        0,
        observed=90,
        severity="high",
        segment=("all", "all"),
        explanation={
            "summary": "pricing spiked; region eu-west carries 95% of the excess",
            "over_indexing": [{"field": "region", "value": "eu-west", "excess_share": 0.95}],
            "nps": {"window": {"nps": -40.0}, "baseline": {"nps": 20.0}, "delta": -60.0},
            "key_phrases": [{"phrase": "sales tax"}, {"phrase": "overcharged"}],
        },
    )
    with db_sessions.begin() as s:
        subscribe(s)
        a2, a3 = make_alert("billing", 1, observed=30), make_alert("delivery", 2, observed=20)
        out = run(s, [topic_level, a2, a3], T0 + 6 * H)
        assert (len(out.created), out.updated, out.resolved) == (1, [], [])
        inc = service.get_one(
            db_session=s, incident_id=out.created[0], settings=SETTINGS, labels={"pricing": "Pricing"}
        )
    assert inc.headline == "Surge in eu-west: Pricing and 2 more topics"
    assert (inc.segment, inc.segment_value, inc.severity, inc.status) == ("region", "eu-west", "high", "new")
    assert inc.topics == ["pricing", "billing", "delivery"]
    assert [m.rank for m in inc.members] == [1, 2, 3] and inc.members[0].alert_id == topic_level.id
    assert [m.reason_code for m in inc.members] == ["opened", "same_segment", "same_segment"]
    assert "region=eu-west" in inc.members[1].reason
    assert inc.summary["nps"]["delta"] == -60.0 and inc.summary["lead_alert_id"] == topic_level.id
    assert inc.summary["text"].startswith(
        "Surge in eu-west: Pricing and 2 more topics (sales tax, overcharged)"
    )
    assert "NPS -40 vs +20" in inc.summary["text"]
    with db_sessions() as s:
        (ev,) = events(s)
    assert ev["type"] == "incident.created" and ev["data"]["incident"]["id"] == inc.id
    assert [m["reason_code"] for m in ev["data"]["incident"]["members"]] == [
        "opened",
        "same_segment",
        "same_segment",
    ]


def test_updates_auto_resolve_and_never_reopen(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions.begin() as s:
        subscribe(s)
        first = make_alert("pricing", 0)
        (iid,) = run(s, [first], T0 + 4 * H).created
        # the alert grows (a later bucket) and a related one joins: one incident.updated
        first.window_end, first.observed, first.severity = T0 + 5 * H, 120.0, "critical"
        out = run(s, [first, make_alert("billing", 4)], T0 + 6 * H)
        assert (out.created, out.updated) == ([], [iid])
        inc = s.get(Incident, iid)
        assert inc is not None and (inc.revision, inc.severity) == (2, "critical")
        # a run with nothing new, 23 quiet hours after the last member: still open; 24: resolved (auto)
        assert (
            record.record(db_session=s, settings=SETTINGS, alerts=[], at=T0 + 30 * H, now=T0).resolved == []
        )
        out = record.record(db_session=s, settings=SETTINGS, alerts=[], at=T0 + 31 * H, now=T0 + 31 * H)
        assert out.resolved == [iid]
        assert (inc.status, inc.resolved_reason, inc.revision) == ("resolved", "auto", 3)
        assert first.status == "new"  # members keep their own lifecycle
        (entry,) = cases.history(db_session=s, target_type="incident", target_id=iid)  # kept in its case
        assert (entry.actor, entry.action, entry.from_status, entry.to_status) == (
            "system",
            "resolved",
            "new",
            "resolved",
        )
        assert entry.details == {"resolved_reason": "auto"}
        # a closed incident is not open either: the next run leaves it alone
        inc.status = "closed"
        s.flush()
        assert (
            record.record(
                db_session=s, settings=SETTINGS, alerts=[], at=T0 + 31 * H, now=T0 + 31 * H
            ).resolved
            == []
        )
        inc.status = "resolved"
        # a later change of a member alert does not reopen it, nor open another incident
        first.observed = 130.0
        out = run(s, [first], T0 + 32 * H)
        assert (out.created, out.updated, out.resolved) == ([], [], [])
        # a new alert of the same topic and region opens a new incident
        (other,) = run(s, [make_alert("pricing", 33)], T0 + 36 * H).created
        assert other != iid
        types = [e["type"] for e in events(s)]
    assert types == ["incident.created", "incident.updated", "incident.resolved", "incident.created"]


def test_manual_lifecycle_cascades_to_member_alerts(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions.begin() as s:
        subscribe(s)
        a1, a2 = make_alert("pricing", 0), make_alert("billing", 1)
        (iid,) = run(s, [a1, a2], T0 + 4 * H).created
    with db_sessions.begin() as s:
        assert _incident_of(s, a2.id) == iid
        service.acknowledge(db_session=s, incident_id=iid, note="tax engine")
        assert {a.status for a in s.scalars(select(Alert))} == {"acknowledged"}
        with pytest.raises(Conflict):
            service.acknowledge(db_session=s, incident_id=iid)
    with db_sessions.begin() as s:
        inc = service.resolve(db_session=s, incident_id=iid)
        assert (inc.status, inc.resolved_reason, inc.note) == ("resolved", "manual", "tax engine")
        assert {a.status for a in s.scalars(select(Alert))} == {"resolved"}
    with db_sessions.begin() as s:
        with pytest.raises(Conflict):
            service.resolve(db_session=s, incident_id=iid)
        with pytest.raises(NotFound):
            service.get(db_session=s, incident_id="inc_nope")
        types = [e["type"] for e in events(s)]
    assert types.count("incident.resolved") == 1 and types.count("alert.resolved") == 2


def _incident_of(s: Session, alert_id: str) -> str:
    """The incident of an alert (via its member row)."""
    link = s.get(IncidentMember, alert_id)
    assert link is not None
    return link.incident_id


def test_filters_match_any_topic_of_an_incident(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions.begin() as s:
        subscribe(s, filter_topics=["billing"], min_severity="medium")
        subscribe(s, filter_topics=["support"])
        run(s, [make_alert("pricing", 0), make_alert("billing", 1)], T0 + 4 * H)
        assert len(s.scalars(select(WebhookEvent)).all()) == 1
        assert len(s.scalars(select(WebhookDelivery)).all()) == 1  # to the billing subscriber only


def test_a_lone_level_shift_opens_an_incident_only_when_high(db_sessions: sessionmaker[Session]) -> None:
    """``incident_min_severity_shift`` (default high): a lone medium level shift (what a weekly pattern taken
    for a change looks like) opens no incident; it still joins one, and a high one opens one alone."""
    shift = {"kind": "level_shift", "direction": "down"}
    with db_sessions.begin() as s:
        lone = make_alert("support", 0, severity="medium", **shift)  # type: ignore[arg-type]
        assert run(s, [lone], T0 + 6 * H).created == []
        spike = make_alert("pricing", 10, severity="medium", direction="down", kind="drop")
        joins = make_alert("billing", 11, severity="medium", **shift)  # type: ignore[arg-type]
        (iid,) = run(s, [spike, joins], T0 + 16 * H).created
        assert _incident_of(s, joins.id) == iid
        high = make_alert("app", 40, severity="high", segment=("region", "apac"), **shift)  # type: ignore[arg-type]
        assert len(run(s, [high], T0 + 46 * H).created) == 1
    view = record.member_view
    assert not view(lone, 0.5, "medium", "high").opens and view(lone, 0.5, "medium", "medium").opens
    assert view(spike, 0.5, "medium", "high").opens  # a spike or drop: incident_min_severity alone
    assert not view(high, 0.5, "critical", "high").opens  # the stricter of the two floors


def test_a_topic_alert_is_carried_by_the_segments_that_fired_and_a_joint_alert_may_open() -> None:
    """The same topic across segments: a topic alert whose region series fired in its episode (delivery up in
    eu-west and us-west at once, no value over-indexing) shares those regions with the alerts there (only
    then: an alert whose over-indexing names its area keeps that one); a low
    alert that fired in the joint test of its region (``anomaly.joint``) may open an incident."""
    topic = make_alert(
        "delivery",
        0,
        segment=("all", "all"),
        explanation={"segments_fired": ["region=eu-west", "region=us-west"]},
    )
    assert record.member_view(topic, 0.5).areas == (("region", "eu-west"), ("region", "us-west"))
    # the region whose series rose most comes first, and carries an incident that alert opens alone
    # (scenario 12015: app up in us-east and with a surge in us-west, and a noise hour in eu-west)
    peaks = {"region=eu-west": 6.5, "region=us-west": 14.0}
    topic.explanation = {**topic.explanation, "segments_peak": peaks}
    seen = record.member_view(topic, 0.5)
    assert seen.areas == (("region", "us-west"), ("region", "eu-west"))
    assert grouping.area_of([seen]) == ("region", "us-west")
    carried = {"field": "region", "value": "eu-west", "excess_share": 0.9}
    named = make_alert(
        "delivery",
        0,
        segment=("all", "all"),
        explanation={"segments_fired": ["region=eu-west", "source=email"], "over_indexing": [carried]},
    )
    assert record.member_view(named, 0.5).areas == (("region", "eu-west"),)  # what the over-indexing names
    low = make_alert("billing", 0, severity="low")
    assert not record.member_view(low, 0.5, "medium").opens
    joint = make_alert(
        "app", 0, severity="low", explanation={"joint": {"p_value": 1e-6, "segment": "region=apac"}}
    )
    seen = record.member_view(joint, 0.5, "medium")  # an eu-west alert that also fired with apac's topics
    assert seen.opens and seen.areas == (("region", "eu-west"), ("region", "apac"))
    # a topic alert whose excess a region carries stays there, though its series in another region rose with
    # that region's topics (scenario 1002: pricing up alone in us-east, and with a surge in eu-north)
    labelled = {"joint": {"p_value": 1e-7, "segment": "region=eu-north"}}
    both = make_alert("pricing", 0, segment=("all", "all"), explanation=named.explanation | labelled)
    seen = record.member_view(both, 0.5, "medium")
    assert seen.areas == (("region", "eu-west"),) and seen.opens


def test_a_segment_alert_is_carried_by_every_segment_that_fired_in_its_episode() -> None:
    """A segment alert (the topic's total did not fire) sits on its strongest segment series; the other
    segment series of the topic that fired in its episode are evidence in their own segments (incident
    scenario 6 of seed 0: delivery up in eu-west with support there, its alert on a noise hour in
    eu-north)."""
    segment = make_alert(
        "delivery", 0, segment=("region", "eu-north"), explanation={"segments_fired": ["region=eu-west"]}
    )
    assert record.member_view(segment, 0.5).areas == (("region", "eu-north"), ("region", "eu-west"))


def test_a_weak_firing_elsewhere_does_not_carry_an_alert_there() -> None:
    """A segment value whose series rose by less than ``record.AREA_PEAK_SHARE`` of the alert's strongest
    excess is not one of its areas (scenario 1000: pricing up with a surge in eu-west, its us-east series a
    weak partner of support's single event there, 1.4 comments an hour above; the surge's alerts were carried
    into us-east's incident and the surge came out as none)."""
    weak = make_alert(
        "pricing",
        0,
        segment=("region", "eu-west"),  # 50 comments above the expectation in its peak
        explanation={"segments_fired": ["region=us-east"], "segments_peak": {"region=us-east": 1.4}},
    )
    assert record.member_view(weak, 0.5).areas == (("region", "eu-west"),)
    strong = make_alert(
        "pricing",
        0,
        segment=("region", "eu-west"),
        explanation={"segments_fired": ["region=us-east"], "segments_peak": {"region=us-east": 20.0}},
    )
    assert record.member_view(strong, 0.5).areas == (("region", "eu-west"), ("region", "us-east"))
    assert 1.4 < record.AREA_PEAK_SHARE * 50.0 <= 20.0


def test_each_area_carries_the_excess_of_the_alert_there() -> None:
    """An alert's areas carry the excess it has there (``Member.area_excess``): its own segment and a value
    its explanation's over-indexing names carry its excess (times the value's share), a segment value that
    fired in its episode its own peak (scenario 55008: app's us-east series, refunds' partner in a joint test
    there, rose 3.2 comments an hour against 5.7 in eu-west; counted whole in both, it moved a surge's
    incident to the single event's region)."""
    app = make_alert(
        "app",
        0,
        segment=("region", "eu-west"),  # 50 comments above the expectation in its peak
        explanation={"segments_fired": ["region=us-east"], "segments_peak": {"region=us-east": 20.0}},
    )
    seen = record.member_view(app, 0.5)
    assert seen.areas == (("region", "eu-west"), ("region", "us-east"))
    assert seen.excess == 50.0 and seen.area_excess == (50.0, 20.0)
    carried = {"field": "region", "value": "eu-west", "excess_share": 0.8}
    total = make_alert("app", 0, segment=("all", "all"), explanation={"over_indexing": [carried]})
    seen = record.member_view(total, 0.5)
    assert seen.areas == (("region", "eu-west"),) and seen.area_excess == (40.0,)
