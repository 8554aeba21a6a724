"""Keywords of discovered clusters: class-based TF-IDF over spaCy lemmas and noun chunks (pure code, no DB).

Each comment becomes a set of terms: the lowercased lemmas of its content words (no stop words, punctuation,
numbers) and its noun chunks of two or more content words, lemmatised (``"my loyalty points"`` ->
``"loyalty point"``). A cluster is one class; its terms are counted once per comment (document frequency, so
one comment repeating a word does not dominate). The weight of term t in class c is BERTopic's c-TF-IDF::

    w(t, c) = tf(t, c) * log(1 + A / f(t))

with ``tf(t, c)`` the term's share of class c's term occurrences, ``f(t)`` its occurrences over all classes
and ``A`` the mean occurrences per class. Pass a background class (comments of the same window that topics
claim, and unclustered ones) so that words common everywhere ("order", "customer") weigh little.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from nlp_service.inference.spacy_pipeline import load_spacy, transient_docs

MAX_TERM = 60
PHRASE_SHARE = 0.5
"""A phrase replaces a chosen word it contains if it occurs in at least this share of that word's comments."""


def doc_terms(doc: Any) -> set[str]:
    """The terms of one spaCy ``Doc``: content-word lemmas and multi-word noun chunks (lemmatised)."""
    terms: set[str] = set()
    for tok in doc:
        if tok.is_stop or tok.is_punct or tok.is_space or tok.like_url or tok.like_num or not tok.is_alpha:
            continue
        lemma = (tok.lemma_ or tok.text).lower()
        if 2 <= len(lemma) <= MAX_TERM:
            terms.add(lemma)
    if doc.has_annotation("DEP"):
        for chunk in doc.noun_chunks:
            words = [
                (t.lemma_ or t.text).lower()
                for t in chunk
                if t.is_alpha and not (t.is_stop or t.is_punct or t.is_space)
            ]
            phrase = " ".join(words)
            if len(words) >= 2 and len(phrase) <= MAX_TERM:
                terms.add(phrase)
    return terms


def extract_terms(texts: Sequence[str], spacy_model: str) -> list[set[str]]:
    """:func:`doc_terms` of each text, parsed by the shared spaCy pipeline ``spacy_model`` (without NER)."""
    if not texts:
        return []
    nlp = load_spacy(spacy_model, exclude=("ner",))
    return transient_docs(nlp, texts, doc_terms)


def class_counts(docs: Iterable[set[str]]) -> Counter[str]:
    """Document frequency of each term over one class's comments."""
    counts: Counter[str] = Counter()
    for terms in docs:
        counts.update(terms)
    return counts


def class_tfidf(classes: Sequence[Counter[str]]) -> list[dict[str, float]]:
    """c-TF-IDF weight of every term of every class (see the module docstring)."""
    totals = [sum(c.values()) for c in classes]
    overall: Counter[str] = Counter()
    for c in classes:
        overall.update(c)
    mean = sum(totals) / max(len(classes), 1)
    out = []
    for c, total in zip(classes, totals, strict=True):
        out.append({t: (n / total) * math.log(1 + mean / overall[t]) for t, n in c.items()} if total else {})
    return out


def top_keywords(
    classes: Sequence[Counter[str]], *, k: int = 8, min_docs: int = 2, n_clusters: int | None = None
) -> list[list[str]]:
    """The ``k`` best terms of each class, best first, for the first ``n_clusters`` classes (the rest are
    background). A term needs ``min_docs`` comments of its class. A noun chunk that covers most uses of a
    word already chosen (:data:`PHRASE_SHARE`) takes that word's place, so ``"loyalty point"`` is listed
    rather than ``"loyalty"`` and ``"point"`` both."""
    weights = class_tfidf(classes)
    n = len(classes) if n_clusters is None else n_clusters
    out: list[list[str]] = []
    for counts, w in zip(classes[:n], weights[:n], strict=True):
        ranked = sorted((t for t in w if counts[t] >= min_docs), key=lambda t: (-w[t], t))
        chosen: list[str] = []
        for term in ranked:
            if len(chosen) >= k and " " not in term:
                continue
            words = term.split()
            covered = [c for c in chosen if c in words and counts[term] >= PHRASE_SHARE * counts[c]]
            if covered:
                at = chosen.index(covered[0])
                chosen = [c for c in chosen if c not in covered]
                chosen.insert(at, term)
            elif len(chosen) < k and not any(term in c.split() for c in chosen if " " in c):
                chosen.append(term)
        out.append(chosen[:k])
    return out
