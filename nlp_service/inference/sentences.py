"""Sentence embeddings from the comment's own encoder pass: split, map to tokens, pool the last layer.

A comment of two or more sentences gets one embedding per sentence, the L2-normalised mean of the last
layer's token states over the sentence's tokens, taken from the forward pass that already encodes the
whole comment (no extra pass). The splitter is rule-based: a spaCy parse costs milliseconds per comment,
this costs microseconds (``python -m evaluation.topic_sentences``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

Span = tuple[int, int]

# A sentence ends at . ! ? (or …) followed by space, or at a line break; the next one starts at a
# non-space. Closing quotes and brackets stay with the sentence they close.
_END = re.compile(r"[.!?\u2026]+[\"'\u2019\u201d)\]]*(?=\s)|\n\s*")
# Abbreviations whose period ends no sentence (lowercase, without the period).
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st vs etc e.g i.e approx dept no nr inc ltd co jr sr mt ft est fig jan feb mar apr "
    "jun jul aug sep sept oct nov dec".split()
)
MIN_SENTENCE_WORDS = 2
"""A shorter fragment ("Fine.", "Thanks!") joins the sentence before it (or after it, at the start)."""
SPLIT_CLAUSES = True
"""Served sentences are also split at contrastive clauses: "Delivery was fast | but the app keeps crashing"
(two-topic comments joined by "but": both topics found in 19.5% -> 38.8%; ``evaluation.topic_sentences``)."""
_WORD = re.compile(r"\w+")
# Clause boundaries inside a sentence: a semicolon, or a contrastive conjunction (it opens the next clause).
_CLAUSE = re.compile(r";\s*|,?\s+(?=(?:but|however|although|though|whereas|yet)\b)", re.IGNORECASE)
_CLOSERS = "\"')]\u2019\u201d"


def _next_is_lower(text: str, end: int) -> bool:
    rest = text[end:].lstrip()
    return bool(rest) and rest[0].islower()


def _ends_with_abbreviation(text: str, end: int) -> bool:
    """True if the period at ``text[end - 1]`` closes an abbreviation or a single letter ("U.S.")."""
    start = end - 1
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start : end - 1].lower().lstrip("(\"'")
    return word in ABBREVIATIONS or (len(word) <= 3 and "." in word) or len(word) == 1


def split_sentences(text: str, *, min_words: int = MIN_SENTENCE_WORDS, clauses: bool = False) -> list[Span]:
    """Character spans ``(start, end)`` of the sentences of ``text`` (stripped, in order); with ``clauses``
    also split at semicolons and before contrastive conjunctions ("but", "however", "although", ...).

    Fragments of fewer than ``min_words`` words join a neighbour, so a comment's spans cover all its words.
    """
    spans: list[Span] = []
    start = 0
    for match in _END.finditer(text):
        end = match.end()
        piece = text[start:end]
        if not piece.strip():
            start = end
            continue
        mark = match.group()
        if mark == "." and _ends_with_abbreviation(text, end):
            continue
        if mark[-1] in _CLOSERS and _next_is_lower(text, end):  # 'I asked "why?" and got nothing.'
            continue
        spans.append(_strip(text, start, end))
        start = end
    if text[start:].strip():
        spans.append(_strip(text, start, len(text)))
    if clauses:
        spans = [part for span in spans for part in _clauses(text, span)]
    return _merge_short(text, spans, min_words)


def _clauses(text: str, span: Span) -> list[Span]:
    start, end = span
    parts: list[Span] = []
    for match in _CLAUSE.finditer(text, start, end):
        if match.start() > start:
            parts.append(_strip(text, start, match.start()))
        start = match.end()
    parts.append(_strip(text, start, end))
    return [p for p in parts if p[1] > p[0]]


def _strip(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _merge_short(text: str, spans: list[Span], min_words: int) -> list[Span]:
    merged: list[Span] = []
    for start, end in spans:
        short = len(_WORD.findall(text[start:end])) < min_words
        if merged and (short or len(_WORD.findall(text[merged[-1][0] : merged[-1][1]])) < min_words):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def token_spans(offsets: np.ndarray, spans: Sequence[Span]) -> list[Span]:
    """Token index ranges ``[first, last)`` of character ``spans``, from a fast tokenizer's offset mapping
    ``(t, 2)`` (special and padding tokens have ``(0, 0)``). A span cut off by truncation gets the tokens
    that remain; one wholly cut off gets an empty range."""
    offsets = np.asarray(offsets)
    real = offsets[:, 1] > offsets[:, 0]
    starts, ends = offsets[:, 0], offsets[:, 1]
    out: list[Span] = []
    for start, end in spans:
        inside = np.flatnonzero(real & (ends > start) & (starts < end))
        out.append((int(inside[0]), int(inside[-1]) + 1) if len(inside) else (0, 0))
    return out


def pool_spans(hidden: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
    """``(s, dim)`` L2-normalised means of ``hidden`` ``(t, dim)`` over the token ranges (empty ranges
    are dropped)."""
    rows = [hidden[a:b].mean(axis=0) for a, b in spans if b > a]
    if not rows:
        return np.zeros((0, hidden.shape[-1]), np.float32)
    pooled = np.stack(rows).astype(np.float32, copy=False)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def sentence_embeddings(
    text: str,
    offsets: np.ndarray,
    hidden: np.ndarray,
    *,
    min_words: int = MIN_SENTENCE_WORDS,
    clauses: bool = SPLIT_CLAUSES,
) -> np.ndarray | None:
    """A comment's ``(s, dim)`` sentence (and clause) embeddings from its token states, or None for fewer
    than two (the comment's own embedding stands for it)."""
    spans = split_sentences(text, min_words=min_words, clauses=clauses)
    if len(spans) < 2:
        return None
    pooled = pool_spans(hidden, token_spans(offsets, spans))
    return pooled if len(pooled) >= 2 else None
