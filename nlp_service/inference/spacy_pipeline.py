"""Shared spaCy pipelines: loaded once per (model, excluded components) and reused by every caller."""

from __future__ import annotations

import threading
from typing import Any

_PIPELINES: dict[tuple[str, tuple[str, ...]], Any] = {}
_LOCK = threading.Lock()


def load_spacy(name: str, exclude: tuple[str, ...] = ()) -> Any:
    """The spaCy pipeline ``name`` (an installed package or a path) without the ``exclude`` components."""
    key = (name, tuple(sorted(exclude)))
    with _LOCK:
        if key not in _PIPELINES:
            import spacy

            try:
                _PIPELINES[key] = spacy.load(name, exclude=list(exclude))
            except OSError as exc:
                raise OSError(
                    f"spaCy pipeline {name!r} is not installed (set NLP_SPACY_MODEL): {exc}"
                ) from exc
        return _PIPELINES[key]
