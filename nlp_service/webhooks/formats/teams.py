"""Microsoft Teams message carrying an Adaptive Card (incoming webhook / Workflows)."""

from __future__ import annotations

from typing import Any

from nlp_service.webhooks.formats.message import Message

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
COLOR = {"critical": "Attention", "high": "Attention", "medium": "Warning", "low": "Accent"}


def to_teams(msg: Message) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": msg.title,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": COLOR.get(msg.severity or "", "Default"),
        },
        {"type": "TextBlock", "text": msg.headline, "wrap": True},
    ]
    if msg.facts:
        body.append({"type": "FactSet", "facts": [{"title": n, "value": v} for n, v in msg.facts]})
    if msg.key_phrases:
        body.append({"type": "TextBlock", "text": f"Key phrases: {', '.join(msg.key_phrases)}", "wrap": True})
    card: dict[str, Any] = {"$schema": CARD_SCHEMA, "type": "AdaptiveCard", "version": "1.4", "body": body}
    if msg.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": msg.link}]
    return {
        "type": "message",
        "summary": msg.subject,
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }
