"""Topic taxonomies: load, validate and save the JSON file that defines the zero-shot topics.

A taxonomy file looks like::

    {"name": "customer-experience", "version": "1", "default_threshold": 0.45,
     "topics": [{"id": "delivery_shipping", "name": "Delivery & shipping",
                 "description": "...", "examples": ["my parcel never came", ...], "threshold": 0.42}]}

``threshold`` and ``default_threshold`` are optional. A topic may also name a ``parent`` (a top-level topic:
two levels), carry taught ``positives``/``negatives`` (texts that are / are not the topic, from which a
learned scorer is trained) and be defined by a search ``query`` (``{"text": ..., "filters": {...}}``).
Every problem found while loading raises ``TaxonomyError`` naming the file, the topic and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
DEFAULT_THRESHOLD = 0.5
_TOP_KEYS = {"name", "version", "default_threshold", "topics"}
_TOPIC_KEYS = {
    "id",
    "name",
    "description",
    "examples",
    "threshold",
    "parent",
    "positives",
    "negatives",
    "query",
}
QUERY_FILTER_KEYS = ("source", "touchpoint", "region", "sentiment")
MAX_EXAMPLES = 500  # per list of a topic
MAX_TOPICS = 1000


class TaxonomyError(ValueError):
    """A taxonomy file or mapping is malformed; the message names the problem."""


@dataclass(frozen=True)
class TopicQuery:
    """A topic defined by a search: comments similar to ``text`` whose fields match ``filters`` (any of the
    listed values per field; fields combine with AND)."""

    text: str
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def matches(self, fields: dict[str, str | None]) -> bool:
        """Whether a comment's fields (source, touchpoint, region, sentiment) pass the filters."""
        return all(fields.get(key) in values for key, values in self.filters)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "filters": {key: list(values) for key, values in self.filters}}


@dataclass(frozen=True)
class Topic:
    """One topic: a slug id, a display name, a description and example phrases as customers write them.

    ``positives``/``negatives`` are taught examples (texts that are / are not this topic); ``parent`` makes it
    a sub-topic; ``query`` makes it a topic defined by a search.
    """

    id: str
    name: str
    description: str
    examples: tuple[str, ...] = ()
    threshold: float | None = None
    parent: str | None = None
    positives: tuple[str, ...] = ()
    negatives: tuple[str, ...] = ()
    query: TopicQuery | None = None

    def texts(self) -> list[str]:
        """The texts whose embeddings make this topic's prototype: the description, then the examples (a
        query topic: its query text, then the examples)."""
        head = self.query.text if self.query is not None else self.description
        return [head, *self.examples]

    def to_dict(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "examples": list(self.examples),
        }
        if self.threshold is not None:
            item["threshold"] = self.threshold
        if self.parent is not None:
            item["parent"] = self.parent
        if self.positives:
            item["positives"] = list(self.positives)
        if self.negatives:
            item["negatives"] = list(self.negatives)
        if self.query is not None:
            item["query"] = self.query.to_dict()
        return item


@dataclass(frozen=True)
class Taxonomy:
    """An ordered set of topics; the order fixes the columns of the scorer's output."""

    topics: tuple[Topic, ...]
    name: str = "custom"
    version: str = "1"
    default_threshold: float = DEFAULT_THRESHOLD
    source: str = field(default="<memory>", compare=False)

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.topics]

    def thresholds(self) -> list[float]:
        """Per-topic thresholds, falling back to ``default_threshold``."""
        return [self.default_threshold if t.threshold is None else t.threshold for t in self.topics]

    def get(self, topic_id: str) -> Topic | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def fingerprint(self) -> str:
        """sha256 of what the prototypes depend on (ids, descriptions, examples), not of the thresholds."""
        payload: list[list[Any]] = []
        for t in self.topics:
            item: list[Any] = [t.id, t.description, list(t.examples)]
            if t.positives or t.negatives or t.query is not None or t.parent is not None:
                extra = [t.parent, list(t.positives), list(t.negatives), t.query and t.query.to_dict()]
                item.append(extra)  # appended only when present: older fingerprints stay valid
            payload.append(item)
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()

    def with_thresholds(self, thresholds: dict[str, float], default: float | None = None) -> Taxonomy:
        """A copy with the given per-topic thresholds (rounded to 4 decimals) and default."""
        unknown = set(thresholds) - set(self.ids)
        if unknown:
            raise TaxonomyError(f"thresholds for unknown topics: {sorted(unknown)}")
        topics = tuple(
            replace(t, threshold=round(float(thresholds[t.id]), 4)) if t.id in thresholds else t
            for t in self.topics
        )
        dflt = self.default_threshold if default is None else round(float(default), 4)
        return replace(self, topics=topics, default_threshold=dflt)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "default_threshold": self.default_threshold,
            "topics": [t.to_dict() for t in self.topics],
        }


def _threshold(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TaxonomyError(f"{where}: must be a number, got {value!r}")
    if not -1.0 <= value <= 1.0:
        raise TaxonomyError(f"{where}: must be a cosine similarity in [-1, 1], got {value}")
    return float(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TaxonomyError(f"{where}: must be a non-empty string, got {value!r}")
    return value.strip()


def _topic(raw: Any, where: str) -> Topic:
    if not isinstance(raw, dict):
        raise TaxonomyError(f"{where}: must be an object, got {type(raw).__name__}")
    topic_id = raw.get("id")
    if not isinstance(topic_id, str) or not SLUG.match(topic_id):
        raise TaxonomyError(f"{where}: 'id' must be a lowercase slug (like 'refunds'), got {topic_id!r}")
    where = f"{where} ({topic_id!r})"
    unknown = set(raw) - _TOPIC_KEYS
    if unknown:
        raise TaxonomyError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_TOPIC_KEYS)}")
    for key in ("name", "description"):
        if key not in raw:
            raise TaxonomyError(f"{where}: missing required field {key!r}")
    threshold = raw.get("threshold")
    parent = raw.get("parent")
    if parent is not None and (not isinstance(parent, str) or not SLUG.match(parent)):
        raise TaxonomyError(f"{where}: 'parent' must be a topic id, got {parent!r}")
    return Topic(
        id=topic_id,
        name=_text(raw["name"], f"{where}: 'name'"),
        description=_text(raw["description"], f"{where}: 'description'"),
        examples=_texts(raw, "examples", where),
        threshold=None if threshold is None else _threshold(threshold, f"{where}: 'threshold'"),
        parent=parent,
        positives=_texts(raw, "positives", where),
        negatives=_texts(raw, "negatives", where),
        query=None if raw.get("query") is None else _query(raw["query"], f"{where}: 'query'"),
    )


def parse_topic(raw: Any, where: str = "topic") -> Topic:
    """Validate one topic alone (its parent is checked with the whole taxonomy)."""
    return _topic(raw, where)


def _texts(raw: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = raw.get(key, [])
    if not isinstance(values, list):
        raise TaxonomyError(f"{where}: {key!r} must be a list of strings")
    if len(values) > MAX_EXAMPLES:
        raise TaxonomyError(f"{where}: {key!r} holds {len(values)} texts; at most {MAX_EXAMPLES}")
    return tuple(_text(e, f"{where}: {key}[{i}]") for i, e in enumerate(values))


def _query(raw: Any, where: str) -> TopicQuery:
    if not isinstance(raw, dict) or set(raw) - {"text", "filters"}:
        raise TaxonomyError(f"{where}: must be an object with 'text' and optional 'filters'")
    filters = raw.get("filters") or {}
    if not isinstance(filters, dict):
        raise TaxonomyError(f"{where}: 'filters' must be an object")
    pairs = []
    for key, values in sorted(filters.items()):
        if key not in QUERY_FILTER_KEYS:
            raise TaxonomyError(f"{where}: filter {key!r} is not one of {list(QUERY_FILTER_KEYS)}")
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise TaxonomyError(f"{where}: filter {key!r} must be a non-empty list of strings")
        pairs.append((key, tuple(values)))
    return TopicQuery(text=_text(raw.get("text"), f"{where}: 'text'"), filters=tuple(pairs))


def parse_taxonomy(data: Any, source: str = "<memory>") -> Taxonomy:
    """Validate a decoded taxonomy mapping; raise ``TaxonomyError`` naming the first problem."""
    if not isinstance(data, dict):
        raise TaxonomyError(f"{source}: the taxonomy must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        allowed = sorted(_TOP_KEYS)
        raise TaxonomyError(f"{source}: unknown top-level field(s) {sorted(unknown)}; allowed: {allowed}")
    raw_topics = data.get("topics")
    if not isinstance(raw_topics, list) or not raw_topics:
        raise TaxonomyError(f"{source}: 'topics' must be a non-empty list")
    if len(raw_topics) > MAX_TOPICS:
        raise TaxonomyError(f"{source}: {len(raw_topics)} topics; at most {MAX_TOPICS}")
    topics = tuple(_topic(raw, f"{source}: topics[{i}]") for i, raw in enumerate(raw_topics))
    seen: set[str] = set()
    for t in topics:
        if t.id in seen:
            raise TaxonomyError(f"{source}: duplicate topic id {t.id!r}")
        seen.add(t.id)
    _check_parents(topics, source)
    default = data.get("default_threshold", DEFAULT_THRESHOLD)
    return Taxonomy(
        topics=topics,
        name=_text(data.get("name", "custom"), f"{source}: 'name'"),
        version=_text(str(data.get("version", "1")), f"{source}: 'version'"),
        default_threshold=_threshold(default, f"{source}: 'default_threshold'"),
        source=source,
    )


def _check_parents(topics: tuple[Topic, ...], source: str) -> None:
    """Parents name known top-level topics (two levels at most)."""
    by_id = {t.id: t for t in topics}
    for i, t in enumerate(topics):
        if t.parent is None:
            continue
        where = f"{source}: topics[{i}] ({t.id!r}): 'parent'"
        parent = by_id.get(t.parent)
        if parent is None or parent.id == t.id:
            raise TaxonomyError(f"{where}: {t.parent!r} is not another topic of this taxonomy")
        if parent.parent is not None:
            raise TaxonomyError(f"{where}: {t.parent!r} is itself a sub-topic (two levels at most)")


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read and validate a taxonomy JSON file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaxonomyError(f"{path}: cannot read taxonomy file ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise TaxonomyError(f"{path}: invalid JSON at {where}: {exc.msg}") from exc
    return parse_taxonomy(data, source=str(path))


def save_taxonomy(taxonomy: Taxonomy, path: str | Path) -> None:
    """Write a taxonomy as indented JSON (used after threshold tuning)."""
    text = json.dumps(taxonomy.to_dict(), indent=2, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")
