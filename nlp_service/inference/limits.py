"""Request limits that come from the settings built at start-up: ``NLP_MAX_TEXTS_PER_REQUEST`` (texts in one
``/v1/classify``) and ``NLP_MAX_TEXT_CHARS`` (characters of any one text: classify, ingest, search query).

The request models cannot see the settings, so views call :func:`check_texts` first, before any work; it
raises the same 422 as a model's own validation. The models document the defaults in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi.exceptions import RequestValidationError

from nlp_service.config import Settings

Loc = tuple[str | int, ...]

DEFAULT_MAX_TEXTS: int = Settings.model_fields["max_texts_per_request"].default
DEFAULT_MAX_TEXT_CHARS: int = Settings.model_fields["max_text_chars"].default


def check_texts(
    settings: Settings, texts: Iterable[tuple[Loc, str]], *, count_loc: Loc | None = None
) -> None:
    """422 if more texts than ``max_texts_per_request`` (when ``count_loc`` names the list) or any text
    longer than ``max_text_chars``; ``texts`` are ``(location in the body, text)`` pairs."""
    items = list(texts)
    errors: list[dict[str, object]] = []
    if count_loc is not None and len(items) > settings.max_texts_per_request:
        errors.append(
            {
                "type": "too_long",
                "loc": ("body", *count_loc),
                "msg": f"List should have at most {settings.max_texts_per_request} items, not {len(items)}",
            }
        )
    limit = settings.max_text_chars
    errors += [
        {
            "type": "string_too_long",
            "loc": ("body", *loc),
            "msg": f"String should have at most {limit} characters",
        }
        for loc, text in items
        if len(text) > limit
    ]
    if errors:
        raise RequestValidationError(errors)
