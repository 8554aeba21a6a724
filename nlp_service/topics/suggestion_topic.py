"""A topic suggestion turned into a taxonomy :class:`Topic` (pure code): what "accept" adds to the taxonomy.

The id is a slug of the top keywords (``loyalty_point_expire``; ``_2``, ``_3``... if taken), the name the
top keywords, the description a sentence listing the keywords, ``positives`` the representative texts (the
learned scorer is taught from them) and ``examples`` the first few of them (the zero-shot prototype).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from nlp_service.topics.taxonomy import SLUG, Topic

MAX_EXAMPLES = 3
MAX_SLUG = 60
_NON_SLUG = re.compile(r"[^a-z0-9]+")


def slug(keywords: Sequence[str], taken: Collection[str] = (), words: int = 3) -> str:
    """A topic id from the first keywords, unique among ``taken``."""
    parts: list[str] = []
    for kw in keywords:
        for w in _NON_SLUG.sub(" ", kw.lower()).split():
            if w not in parts:
                parts.append(w)
    base = "_".join(parts[:words])[:MAX_SLUG].strip("_") or "topic"
    if not SLUG.match(base):
        base = f"topic_{base}"
    out, n = base, 2
    while out in taken:
        out, n = f"{base}_{n}", n + 1
    return out


def to_topic(
    *,
    keywords: Sequence[str],
    texts: Sequence[str],
    topic_id: str | None = None,
    name: str | None = None,
    taken_ids: Collection[str] = (),
) -> Topic:
    """The topic a suggestion with these keywords and representative ``texts`` becomes; ``topic_id`` and
    ``name`` override the derived ones. Raises ``ValueError`` if there is nothing to learn from."""
    positives = tuple(dict.fromkeys(t.strip() for t in texts if t and t.strip()))
    if not positives:
        raise ValueError("a suggestion needs representative texts to become a topic")
    kws = [k for k in keywords if k.strip()]
    if topic_id is not None and not SLUG.match(topic_id):
        raise ValueError(f"topic id must be a lowercase slug, got {topic_id!r}")
    head = kws[:3] or [positives[0][:40]]
    description = (
        f"Comments about {', '.join(kws[:-1])} and {kws[-1]}."
        if len(kws) > 1
        else f"Comments about {head[0]}."
    )
    return Topic(
        id=topic_id or slug(kws or [positives[0]], taken_ids),
        name=name or ", ".join(head).capitalize(),
        description=description,
        examples=positives[:MAX_EXAMPLES],
        positives=positives,
    )
