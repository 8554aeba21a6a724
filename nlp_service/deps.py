"""FastAPI dependency aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from nlp_service.config import Settings
from nlp_service.errors import UnsupportedMediaType
from nlp_service.state import AppState


def get_state(request: Request) -> AppState:
    return request.app.state.nlp


def get_settings(request: Request) -> Settings:
    return request.app.state.nlp.settings


def require_json(request: Request) -> None:
    """Refuse bodies that are not declared as JSON (415), before parsing them."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"content-type must be application/json, got {content_type or 'none'!r}",
            detail=[{"field": "content-type", "message": "expected application/json"}],
        )


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JsonBody = Depends(require_json)
