"""One event as a readable message: a headline, its severity, facts (topic, segment, observed vs expected,
...), key phrases and a link. Alert and incident events read their own fields; any other event gets a
plain message naming its type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITY_ICON = {"critical": "🔴", "high": "🟠", "medium": "🟡", "low": "🔵"}
TITLES = {
    "alert.created": "New alert",
    "alert.updated": "Alert updated",
    "alert.resolved": "Alert resolved",
    "incident.created": "New incident",
    "incident.updated": "Incident updated",
    "incident.resolved": "Incident resolved",
    "webhook.ping": "Test notification",
    "webhook.disabled": "Webhook disabled",
}


@dataclass(frozen=True)
class Message:
    event_id: str
    event_type: str
    title: str  # e.g. "New alert: Pricing & promotions"
    headline: str  # one sentence: what happened
    severity: str | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    key_phrases: list[str] = field(default_factory=list)
    link: str | None = None

    @property
    def subject(self) -> str:
        sev = f"[{self.severity}] " if self.severity else ""
        return f"{sev}{self.title}"[:200]

    def text(self) -> str:
        """Plain text (e-mail body, chat fallback)."""
        lines = [self.title, "", self.headline, ""]
        lines += [f"{name}: {value}" for name, value in self.facts]
        if self.key_phrases:
            lines.append(f"Key phrases: {', '.join(self.key_phrases)}")
        if self.link:
            lines += ["", self.link]
        return "\n".join(lines).strip() + "\n"


def _num(value: Any) -> str:
    if isinstance(value, int | float):
        return f"{value:,.1f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"
    return str(value)


def _phrases(explanation: dict[str, Any]) -> list[str]:
    raw = explanation.get("key_phrases") or []
    out = [str(p.get("phrase") or p.get("text") or "") if isinstance(p, dict) else str(p) for p in raw]
    return [p for p in out if p][:8]


def _case_facts(item: dict[str, Any]) -> list[tuple[str, str]]:
    facts = []
    if item.get("state"):
        facts.append(("Status", str(item["state"]).replace("acknowledged", "in progress")))
    if item.get("owner"):
        facts.append(("Owner", str(item["owner"])))
    change = item.get("change") or {}
    if change.get("action"):
        who = f" by {change['actor']}" if change.get("actor") else ""
        note = f": {change['note']}" if change.get("note") else ""
        facts.append(("Change", f"{change['action']}{who}{note}"))
    return facts


def _link(public_url: str | None, kind: str, item_id: str) -> str | None:
    return f"{public_url.rstrip('/')}/v1/{kind}s/{item_id}" if public_url and item_id else None


def _alert(event: dict[str, Any], alert: dict[str, Any], public_url: str | None) -> Message:
    ex = alert.get("explanation") or {}
    topic = alert.get("topic_label") or alert.get("topic_id") or "?"
    facts = [("Topic", str(topic))]
    if alert.get("severity"):
        facts.append(("Severity", str(alert["severity"])))
    field_, value = alert.get("segment_field"), alert.get("segment_value")
    if field_ and field_ != "all":
        facts.append(("Segment", f"{field_} = {value}"))
    elif alert.get("segment") and alert["segment"] != "all":
        facts.append(("Segment", str(alert["segment"])))
    if ex.get("observed") is not None and ex.get("baseline") is not None:
        facts.append(("Observed vs expected", f"{_num(ex['observed'])} vs {_num(ex['baseline'])}"))
    if alert.get("kind"):
        facts.append(("Kind", str(alert["kind"]).replace("_", " ")))
    if alert.get("started_at"):
        facts.append(("Since", str(alert["started_at"])))
    facts += _case_facts(alert)
    return Message(
        event_id=str(event.get("id", "")),
        event_type=str(event.get("type", "")),
        title=f"{TITLES.get(str(event.get('type')), 'Alert')}: {topic}",
        headline=str(ex.get("summary") or f"{alert.get('kind', 'anomaly')} in {topic}"),
        severity=alert.get("severity"),
        facts=facts,
        key_phrases=_phrases(ex),
        link=_link(public_url, "alert", str(alert.get("id", ""))),
    )


def _incident(event: dict[str, Any], incident: dict[str, Any], public_url: str | None) -> Message:
    ex = incident.get("explanation") or {}
    headline = incident.get("headline") or ex.get("summary") or incident.get("title") or "incident"
    facts = []
    for key, name in (("severity", "Severity"), ("segment", "Segment"), ("topic_label", "Topic")):
        if incident.get(key):
            facts.append((name, str(incident[key])))
    topics = incident.get("topics") or incident.get("topic_ids")
    if topics and not incident.get("topic_label"):
        facts.append(("Topics", ", ".join(str(t) for t in topics)))
    members = incident.get("alerts") or incident.get("members")
    if isinstance(members, list):
        facts.append(("Alerts", str(len(members))))
    facts += _case_facts(incident)
    return Message(
        event_id=str(event.get("id", "")),
        event_type=str(event.get("type", "")),
        title=TITLES.get(str(event.get("type")), "Incident"),
        headline=str(headline),
        severity=incident.get("severity"),
        facts=facts,
        key_phrases=_phrases(incident) or _phrases(ex),
        link=_link(public_url, "incident", str(incident.get("id", ""))),
    )


def message_of(event: dict[str, Any], public_url: str | None = None) -> Message:
    """The readable message of one event envelope (``{"id", "type", "timestamp", "data"}``)."""
    data = event.get("data") or {}
    if isinstance(data.get("alert"), dict):
        return _alert(event, data["alert"], public_url)
    if isinstance(data.get("incident"), dict):
        return _incident(event, data["incident"], public_url)
    event_type = str(event.get("type", "event"))
    if event_type == "webhook.disabled":
        headline = f"Webhook {data.get('webhook_id')} ({data.get('url')}) was disabled: {data.get('reason')}"
    elif event_type == "webhook.ping":
        headline = "This channel receives nlp-service notifications."
    else:
        headline = f"Event {event_type}"
    return Message(
        event_id=str(event.get("id", "")),
        event_type=event_type,
        title=TITLES.get(event_type, event_type),
        headline=headline,
    )
