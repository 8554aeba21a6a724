"""Notification formats of a webhook subscription (pure code, no I/O): ``standard`` sends the event JSON
as is; ``slack`` (incoming-webhook message with blocks), ``teams`` (Adaptive Card message) and ``email``
turn the event into a readable :class:`~nlp_service.webhooks.formats.message.Message` first."""

from __future__ import annotations

import json
from typing import Any

from nlp_service.webhooks.formats.message import Message, message_of
from nlp_service.webhooks.formats.slack import to_slack
from nlp_service.webhooks.formats.teams import to_teams

__all__ = ["Message", "message_of", "render_http"]


def render_http(fmt: str, event: dict[str, Any], public_url: str | None = None) -> bytes:
    """The JSON body a ``slack`` or ``teams`` subscription receives for one event."""
    message = message_of(event, public_url)
    payload = to_slack(message) if fmt == "slack" else to_teams(message)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
