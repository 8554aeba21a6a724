"""Shared spaCy pipelines: loaded once per (model, excluded components) and reused by every caller.

spaCy interns every new string it meets (order numbers, names, typos) in the pipeline's vocab for the life of
the process. ``transient_docs`` runs a pipeline inside a memory zone, so what a batch of texts added is freed
when the caller has read what it needs: the vocab stays at its loaded size however many comments pass.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

_PIPELINES: dict[tuple[str, tuple[str, ...]], Any] = {}
_ZONE_LOCKS: dict[int, threading.Lock] = {}
_LOCK = threading.Lock()

T = TypeVar("T")


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


def transient_docs(
    nlp: Any, texts: Sequence[str], read: Callable[[Any], T], *, disable: Sequence[str] = ()
) -> list[T]:
    """``read(doc)`` for each text's Doc, in order, with the strings the batch added freed afterwards.

    ``read`` must return plain Python values (Docs, Tokens and Spans are invalid once the zone closes).
    Zones on one pipeline must not overlap, so calls on the same pipeline run one at a time.
    """
    with _LOCK:
        lock = _ZONE_LOCKS.setdefault(id(nlp), threading.Lock())
    with lock, nlp.memory_zone():
        return [read(doc) for doc in nlp.pipe(texts, batch_size=256, disable=list(disable))]
