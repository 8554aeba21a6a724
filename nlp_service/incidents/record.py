"""Incidents in the detection run's write phase: each created or changed alert joins or opens an incident
(``incidents.grouping`` decides), and open incidents whose series stayed quiet resolve themselves.

Called by ``anomaly.flows.record`` after the alerts are merged and explained, under the detector's lock and
in the same transaction; the open incidents are row-locked (PostgreSQL) and re-read as locked. An alert of a
resolved incident stays there (a resolved incident is never reopened); ``emerging_topic`` alerts come from
topic discovery, not from this run, and are not grouped.

Auto-resolve: an open incident none of whose members changed in this run resolves (``resolved_reason``
``auto``, ``incident.resolved``) once, for every member, the run's time is at least
``incident_auto_resolve_buckets[bucket]`` buckets (of the member's bucket size) past the member's window
end; its case history keeps the change (actor ``system``). Its member alerts keep their own lifecycle (nobody
acted on them).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.anomaly import explain
from nlp_service.anomaly.explain import SEVERITIES
from nlp_service.anomaly.tables import Alert, Severity
from nlp_service.cases import service as cases
from nlp_service.cases.lifecycle import OPEN_STATUSES
from nlp_service.config import Settings
from nlp_service.incidents import grouping
from nlp_service.incidents.events import emit
from nlp_service.incidents.service import Members, members_of
from nlp_service.incidents.tables import Incident, IncidentMember
from nlp_service.timestamps import BUCKET_SECONDS
from nlp_service.topics.tables import ALL_SEGMENT

GROUPED_KINDS = ("spike", "drop", "level_shift")
SYSTEM = "system"  # the actor of an auto-resolve in the incident's case history


@dataclass
class Recorded:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def rules_of(settings: Settings) -> grouping.Rules:
    return grouping.Rules(
        overlap_slack=timedelta(seconds=settings.incident_overlap_slack_s),
        aftermath=timedelta(seconds=settings.incident_aftermath_s),
        recurrence=timedelta(seconds=settings.incident_recurrence_s),
    )


AREA_PEAK_SHARE = 0.25
"""A segment value that fired in an alert's episode is one of its areas if its series rose by at least this
share of the strongest one's excess."""


def member_view(
    alert: Alert, min_share: float, min_severity: Severity = "low", min_severity_shift: Severity = "low"
) -> grouping.Member:
    """What grouping sees of an alert; its areas are its segment (a segment alert) and the values carrying at
    least ``min_share`` of the excess of their field (the explanation's ``over_indexing``); the segment values
    whose own series fired in its episode (``segments_fired``, the largest excess first: ``segments_peak``)
    and the segment of its joint test (``anomaly.joint``), if any, too for a segment alert (it sits on its
    strongest segment series only), and for a topic alert that names no over-indexing value (its lift
    diluted, e.g. by the same topic up in two regions at once; one that names a value is carried there,
    though a joint test elsewhere labelled it: scenario 1002, pricing up alone in us-east as it rose with a
    surge in eu-north); it may open an incident
    if at least ``min_severity`` (a level shift: and at least ``min_severity_shift``) or if it fired in a
    joint test with other topics of its segment (``anomaly.joint``: significant together)."""
    floor = SEVERITIES.index(min_severity)
    if alert.kind == "level_shift":
        floor = max(floor, SEVERITIES.index(min_severity_shift))
    ex = alert.explanation or {}
    excess = explain.peak_excess(alert)
    areas: dict[tuple[str, str], float] = {}  # each area and the excess it carries (the first one named)
    if alert.segment != ALL_SEGMENT:
        areas[(alert.segment, alert.segment_value)] = excess
    for o in ex.get("over_indexing") or []:
        share = float(o.get("excess_share") or 0.0)
        if share >= min_share:
            areas.setdefault((str(o["field"]), str(o["value"])), excess * share)
    if not areas or alert.segment != ALL_SEGMENT:
        own = excess if alert.segment != ALL_SEGMENT else 0.0
        peaks = ex.get("segments_peak") or {}
        for label in _carrying(ex.get("segments_fired") or [], peaks, own):
            areas.setdefault(_field_value(label), float(peaks.get(label, excess)))
        if "joint" in ex:  # the segment whose topics were up together (maybe one fired besides its own)
            areas.setdefault(_field_value(str(ex["joint"]["segment"])), excess)
    return grouping.Member(
        alert_id=alert.id,
        topic_id=alert.topic_id,
        kind=alert.kind,
        direction=alert.direction,
        start=alert.window_start,
        end=alert.window_end,
        excess=excess,
        score=abs(alert.score),
        areas=tuple(areas),
        opens=SEVERITIES.index(alert.severity) >= floor or "joint" in ex,
        area_excess=tuple(areas.values()),
    )


def view_of(alert: Alert, settings: Settings) -> grouping.Member:
    """``member_view`` with the settings' area share and severity floors."""
    floors = settings.incident_min_severity, settings.incident_min_severity_shift
    return member_view(alert, settings.incident_area_min_share, *floors)


def _carrying(labels: list[str], peaks: dict[str, float], own: float = 0.0) -> list[str]:
    """Segment labels, the one whose series rose most in the episode first (ties: as listed), without those
    that rose by less than ``AREA_PEAK_SHARE`` of the strongest excess (theirs, or ``own``: a segment
    alert's own series; where the peaks are known): a weak firing of the topic elsewhere (e.g. the partner
    of another topic's single event in a joint test) does not carry the alert there, nor chain a surge in
    one region to an event in another (scenario 1000)."""
    ordered = sorted(labels, key=lambda label: -float(peaks.get(label, 0.0)))
    top = max([own, *(float(peaks.get(label, 0.0)) for label in labels)])
    return [label for label in ordered if label not in peaks or float(peaks[label]) >= AREA_PEAK_SHARE * top]


def _field_value(label: str) -> tuple[str, str]:
    fld, _, value = label.partition("=")
    return fld, value


def phrase_text(item: Any) -> str:
    """A key phrase as text, whether the explanation lists strings or objects (``phrase``/``term``/...)."""
    if isinstance(item, dict):
        for key in ("phrase", "term", "text", "label"):
            if key in item:
                return str(item[key])
    return str(item)


def summary_of(headline: str, lead: Alert) -> dict[str, Any]:
    """What the incident carries up from its lead alert's explanation, with one line of text."""
    ex = lead.explanation or {}
    phrases = [phrase_text(p) for p in (ex.get("key_phrases") or [])]
    nps = ex.get("nps") or {}
    text = headline
    if phrases:
        text += f" ({', '.join(phrases[:5])})"
    if nps.get("delta") is not None:
        text += f"; NPS {nps['window']['nps']:+.0f} vs {nps['baseline']['nps']:+.0f} baseline"
    return {
        "text": text + ".",
        "lead_alert_id": lead.id,
        "lead_summary": ex.get("summary"),
        "key_phrases": ex.get("key_phrases") or [],
        "nps": ex.get("nps"),
        "negative_share": ex.get("negative_share"),
        "over_indexing": (ex.get("over_indexing") or [])[:3],
    }


def _fingerprint(incident: Incident, members: Members) -> tuple[Any, ...]:
    return (
        incident.severity,
        incident.headline,
        incident.window_start,
        incident.window_end,
        tuple((link.alert_id, link.rank) for link, _ in members),
        incident.summary,
    )


def refresh(incident: Incident, members: Members, settings: Settings, labels: Mapping[str, str]) -> Members:
    """Recompute the incident from its members (rank, severity, window, topics, area, headline, summary);
    returns the members by rank."""
    views = {a.id: view_of(a, settings) for _, a in members}
    area, order = grouping.ordered(list(views.values()), settings.alert_segments)
    by_id = {a.id: (link, a) for link, a in members}
    ranked = [by_id[m.alert_id] for m in order]
    for rank, (link, _) in enumerate(ranked, start=1):
        link.rank = rank
    alerts = [a for _, a in ranked]
    severity = alerts[0].severity
    for a in alerts[1:]:
        severity = explain.max_severity(severity, a.severity)
    incident.severity = severity
    incident.window_start = min(a.window_start for a in alerts)
    incident.window_end = max(a.window_end for a in alerts)
    incident.topics = list(dict.fromkeys(m.topic_id for m in order))
    incident.segment, incident.segment_value = area or (ALL_SEGMENT, ALL_SEGMENT)
    incident.headline = grouping.headline_of(area, order, labels)[:300]
    incident.summary = summary_of(incident.headline, alerts[0])
    return ranked


def _lock_open(db_session: Session) -> list[Incident]:
    return list(
        db_session.scalars(
            select(Incident)
            .where(Incident.status.in_(OPEN_STATUSES))  # resolved and closed incidents are never reopened
            .order_by(Incident.created_at, Incident.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def record(
    *,
    db_session: Session,
    settings: Settings,
    alerts: Sequence[Alert],
    at: datetime,
    now: datetime,
    topic_labels: Mapping[str, str] | None = None,
) -> Recorded:
    """Group the run's created/changed ``alerts`` into incidents, write their events, auto-resolve quiet
    ones (``at``: the run's evaluation time)."""
    labels = dict(topic_labels or {})
    out = Recorded()
    open_incidents = {i.id: i for i in _lock_open(db_session)}
    members = members_of(db_session=db_session, incident_ids=list(open_incidents))
    rules = rules_of(settings)
    groups = [
        grouping.Group(
            members=[view_of(a, settings) for _, a in members.get(iid, [])],
            reasons={
                link.alert_id: grouping.Reason(
                    cast(grouping.ReasonCode, link.reason_code), link.reason, link.related_alert_id
                )
                for link, _ in members.get(iid, [])
            },
            key=iid,
        )
        for iid in open_incidents
    ]
    placed = {link.alert_id: iid for iid, ms in members.items() for link, _ in ms}
    grouped = [a for a in alerts if a.kind in GROUPED_KINDS]
    linked = _linked(db_session, [a.id for a in grouped if a.id not in placed])  # in resolved incidents
    fresh = [a for a in grouped if a.id not in placed and a.id not in linked]
    by_alert = {a.id: a for a in fresh}
    touched = {placed[a.id] for a in grouped if a.id in placed}
    before = {iid: _fingerprint(open_incidents[iid], members.get(iid, [])) for iid in open_incidents}

    views = [view_of(a, settings) for a in fresh]
    grouping.assign(views, rules, groups)
    for g in groups:
        new = [m for m in g.members if m.alert_id in by_alert]
        if not new:
            continue
        if g.key is None:
            incident = _new_incident(now)
            db_session.add(incident)
            g.key = incident.id
            open_incidents[incident.id] = incident
            out.created.append(incident.id)
        touched.add(g.key)
        for m in new:
            reason = g.reasons[m.alert_id]
            link = IncidentMember(
                alert_id=m.alert_id,
                incident_id=g.key,
                reason_code=reason.code,
                reason=reason.text[:500],
                related_alert_id=reason.related_to,
                rank=0,
                joined_at=now,
            )
            db_session.add(link)
            members.setdefault(g.key, []).append((link, by_alert[m.alert_id]))
    db_session.flush()

    for iid in sorted(touched, key=lambda i: (open_incidents[i].created_at, i)):
        incident = open_incidents[iid]
        ranked = refresh(incident, members[iid], settings, labels)
        if iid in out.created:
            emit(db_session, "incident.created", incident, ranked)
        elif _fingerprint(incident, ranked) != before.get(iid):
            incident.revision += 1
            incident.updated_at = now
            out.updated.append(iid)
            emit(db_session, "incident.updated", incident, ranked)
    for iid, incident in open_incidents.items():
        if iid not in touched and quiet(members.get(iid, []), at, settings):
            before_status = incident.status
            incident.status, incident.resolved_at, incident.resolved_reason = "resolved", now, "auto"
            incident.updated_at = now
            incident.revision += 1
            out.resolved.append(iid)
            entry = cases.record(  # kept in the incident's case history, by the service itself
                db_session,
                "incident",
                incident,
                actor=SYSTEM,
                action="resolved",
                from_status=before_status,
                to_status="resolved",
                details={"resolved_reason": "auto"},
                at=now,
            )
            emit(db_session, "incident.resolved", incident, members.get(iid, []), cases.entry_payload(entry))
    db_session.flush()
    return out


def quiet(members: Members, at: datetime, settings: Settings) -> bool:
    """Whether every member's series has been normal for the auto-resolve span after its window (False
    when auto-resolve is off for a member's bucket size, i.e. 0 buckets)."""
    if not members:
        return False
    for _, alert in members:
        n = settings.incident_auto_resolve_buckets.get(alert.bucket, 0)
        if n <= 0 or at - alert.window_end < timedelta(seconds=n * BUCKET_SECONDS[alert.bucket]):
            return False
    return True


def _linked(db_session: Session, alert_ids: Sequence[str]) -> set[str]:
    if not alert_ids:
        return set()
    stmt = select(IncidentMember.alert_id).where(IncidentMember.alert_id.in_(list(alert_ids)))
    return set(db_session.scalars(stmt))


def _new_incident(now: datetime) -> Incident:
    return Incident(
        id=f"inc_{uuid.uuid4().hex}",
        status="new",
        severity="low",
        headline="",
        segment=ALL_SEGMENT,
        segment_value=ALL_SEGMENT,
        topics=[],
        window_start=now,
        window_end=now,
        summary={},
        revision=1,
        created_at=now,
        updated_at=now,
    )
