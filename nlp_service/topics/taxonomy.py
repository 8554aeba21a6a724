"""Topic taxonomies: load, validate and save the JSON file that defines the zero-shot topics.

A taxonomy file looks like::

    {"name": "customer-experience", "version": "1", "default_threshold": 0.45,
     "topics": [{"id": "delivery_shipping", "name": "Delivery & shipping",
                 "description": "...", "examples": ["my parcel never came", ...], "threshold": 0.42}]}

``threshold`` and ``default_threshold`` are optional. Every problem found while loading raises
``TaxonomyError`` naming the file, the topic and the field.
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
_TOPIC_KEYS = {"id", "name", "description", "examples", "threshold"}


class TaxonomyError(ValueError):
    """A taxonomy file or mapping is malformed; the message names the problem."""


@dataclass(frozen=True)
class Topic:
    """One topic: a slug id, a display name, a description and example phrases as customers write them."""

    id: str
    name: str
    description: str
    examples: tuple[str, ...] = ()
    threshold: float | None = None

    def texts(self) -> list[str]:
        """The texts whose embeddings make this topic's prototype: the description, then the examples."""
        return [self.description, *self.examples]


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

    def fingerprint(self) -> str:
        """sha256 of what the prototypes depend on (ids, descriptions, examples), not of the thresholds."""
        payload = [[t.id, t.description, list(t.examples)] for t in self.topics]
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
        topics = []
        for t in self.topics:
            item: dict[str, Any] = {
                "id": t.id,
                "name": t.name,
                "description": t.description,
                "examples": list(t.examples),
            }
            if t.threshold is not None:
                item["threshold"] = t.threshold
            topics.append(item)
        return {
            "name": self.name,
            "version": self.version,
            "default_threshold": self.default_threshold,
            "topics": topics,
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
    examples = raw.get("examples", [])
    if not isinstance(examples, list):
        raise TaxonomyError(f"{where}: 'examples' must be a list of strings")
    threshold = raw.get("threshold")
    return Topic(
        id=topic_id,
        name=_text(raw["name"], f"{where}: 'name'"),
        description=_text(raw["description"], f"{where}: 'description'"),
        examples=tuple(_text(e, f"{where}: examples[{i}]") for i, e in enumerate(examples)),
        threshold=None if threshold is None else _threshold(threshold, f"{where}: 'threshold'"),
    )


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
    topics = tuple(_topic(raw, f"{source}: topics[{i}]") for i, raw in enumerate(raw_topics))
    seen: set[str] = set()
    for t in topics:
        if t.id in seen:
            raise TaxonomyError(f"{source}: duplicate topic id {t.id!r}")
        seen.add(t.id)
    default = data.get("default_threshold", DEFAULT_THRESHOLD)
    return Taxonomy(
        topics=topics,
        name=_text(data.get("name", "custom"), f"{source}: 'name'"),
        version=_text(str(data.get("version", "1")), f"{source}: 'version'"),
        default_threshold=_threshold(default, f"{source}: 'default_threshold'"),
        source=source,
    )


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
