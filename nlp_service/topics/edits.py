"""Edits of a taxonomy (pure): each returns a new, validated :class:`Taxonomy` or raises the error the API
answers with (404 unknown topic, 409 duplicate id or a parent with sub-topics, 422 invalid result)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from nlp_service.errors import Conflict, InvalidInput, NotFound
from nlp_service.topics.taxonomy import Taxonomy, TaxonomyError, Topic, parse_taxonomy, parse_topic

RESERVED_IDS = frozenset({"versions", "taxonomy", "suggestions", "jobs", "rollback", "examples"})
"""Topic ids that would shadow ``/v1/topics/<word>`` routes."""


def not_found(topic_id: str) -> NotFound:
    return NotFound(f"topic {topic_id!r} not found", detail=[{"field": "topic_id", "message": "unknown"}])


def validated(taxonomy: Taxonomy, *, source: str = "taxonomy") -> Taxonomy:
    """Re-validate a taxonomy as a whole (parents, ids, reserved ids); 422 naming the topic and field."""
    for i, topic in enumerate(taxonomy.topics):
        if topic.id in RESERVED_IDS:
            message = f"{source}: topics[{i}] ({topic.id!r}): 'id' is reserved ({sorted(RESERVED_IDS)})"
            raise InvalidInput(message, detail=[{"field": f"topics[{i}].id", "message": "reserved"}])
    try:
        return parse_taxonomy(taxonomy.to_dict(), source=source)
    except TaxonomyError as exc:
        raise InvalidInput(str(exc), detail=[{"field": "taxonomy", "message": str(exc)}]) from exc


def topic_from(data: dict[str, Any]) -> Topic:
    """One topic from API input (validated like a taxonomy file's topic)."""
    try:
        return parse_topic(data)
    except TaxonomyError as exc:
        raise InvalidInput(str(exc), detail=[{"field": "topic", "message": str(exc)}]) from exc


def create_topic(taxonomy: Taxonomy, topic: Topic) -> Taxonomy:
    if taxonomy.get(topic.id) is not None:
        raise Conflict(f"topic {topic.id!r} already exists", detail=[{"field": "id", "message": "duplicate"}])
    return validated(replace(taxonomy, topics=(*taxonomy.topics, topic)))


def update_topic(taxonomy: Taxonomy, topic_id: str, changes: dict[str, Any]) -> Taxonomy:
    """Replace the given fields of a topic (``id`` cannot change)."""
    current = taxonomy.get(topic_id)
    if current is None:
        raise not_found(topic_id)
    merged = {**current.to_dict(), **changes, "id": topic_id}
    merged = {k: v for k, v in merged.items() if v is not None}
    topic = topic_from(merged)
    return validated(
        replace(taxonomy, topics=tuple(topic if t.id == topic_id else t for t in taxonomy.topics))
    )


def delete_topic(taxonomy: Taxonomy, topic_id: str) -> Taxonomy:
    if taxonomy.get(topic_id) is None:
        raise not_found(topic_id)
    children = [t.id for t in taxonomy.topics if t.parent == topic_id]
    if children:
        raise Conflict(
            f"topic {topic_id!r} has sub-topics {children}; delete or move them first",
            detail=[{"field": "topic_id", "message": "has sub-topics"}],
        )
    if len(taxonomy.topics) == 1:
        raise Conflict(
            "a taxonomy keeps at least one topic", detail=[{"field": "topic_id", "message": "last"}]
        )
    return validated(replace(taxonomy, topics=tuple(t for t in taxonomy.topics if t.id != topic_id)))


def add_examples(
    taxonomy: Taxonomy, topic_id: str, *, positives: Sequence[str], negatives: Sequence[str]
) -> Taxonomy:
    """Append taught examples to a topic (duplicates are kept once)."""
    current = taxonomy.get(topic_id)
    if current is None:
        raise not_found(topic_id)
    topic = replace(
        current,
        positives=tuple(dict.fromkeys((*current.positives, *positives))),
        negatives=tuple(dict.fromkeys((*current.negatives, *negatives))),
    )
    return validated(
        replace(taxonomy, topics=tuple(topic if t.id == topic_id else t for t in taxonomy.topics))
    )
