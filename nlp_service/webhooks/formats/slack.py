"""Slack incoming-webhook message (``text`` fallback + Block Kit ``blocks``)."""

from __future__ import annotations

from typing import Any

from nlp_service.webhooks.formats.message import SEVERITY_ICON, Message


def _escape(text: str) -> str:
    """Slack mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_slack(msg: Message) -> dict[str, Any]:
    icon = SEVERITY_ICON.get(msg.severity or "", "")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{icon} {msg.title}".strip()[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _escape(msg.headline)[:3000]}},
    ]
    if msg.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{_escape(name)}*\n{_escape(value)}"[:2000]}
                    for name, value in msg.facts[:10]  # Slack allows 10 fields per section
                ],
            }
        )
    if msg.key_phrases:
        phrases = ", ".join(_escape(p) for p in msg.key_phrases)
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Key phrases: {phrases}"}]}
        )
    if msg.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": msg.link}
                ],
            }
        )
    return {"text": f"{msg.subject}: {msg.headline}"[:3000], "blocks": blocks}
