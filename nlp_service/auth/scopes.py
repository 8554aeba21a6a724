"""The scopes an API key can hold. Each grants only itself (``admin`` does not imply the others)."""

from __future__ import annotations

from typing import Literal, get_args

Scope = Literal["classify", "search", "ingest", "alerts", "webhooks", "admin", "topics"]
SCOPES: tuple[Scope, ...] = get_args(Scope)


def parse_scopes(value: str | list[str]) -> list[Scope]:
    """``"classify,search"`` or ``["classify", "search"]`` -> sorted unique scopes; ``"all"``: all."""
    items = value.split(",") if isinstance(value, str) else value
    names = {item.strip().lower() for item in items if item.strip()}
    if "all" in names:
        return sorted(SCOPES)
    unknown = sorted(names - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not names:
        raise ValueError("at least one scope is required")
    return sorted(scope for scope in SCOPES if scope in names)
