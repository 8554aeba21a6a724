"""What case views of every target share."""

from __future__ import annotations

from fastapi import Request

OPEN_ACTOR = "open"  # the actor of changes made with API keys off


def actor_of(request: Request) -> str:
    """Who makes a change: the caller's API key id, or ``open`` when keys are off."""
    key_id = getattr(request.state, "key_id", None)
    return str(key_id) if key_id else OPEN_ACTOR
