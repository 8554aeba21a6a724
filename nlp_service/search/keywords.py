"""Keyword relevance: spaCy-lemmatised terms stored per comment, BM25 computed from the stored postings.

Terms are lowercased lemmas without stop words and punctuation. Tokens holding a digit (order numbers,
product codes such as ``ORD-88812`` or ``X200``) are kept whole, plus their digit-bearing parts, so that
``88812`` also finds ``ORD-88812``. Postings live in ``comment_terms`` (row id, term, tf), so the keyword
index is derived from the database and filters are plain SQL joins.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nlp_service.comments.queries import filter_conditions
from nlp_service.comments.schemas import CommentFilter
from nlp_service.comments.tables import Comment, CommentTerm, Prediction
from nlp_service.inference.spacy_pipeline import load_spacy as shared_spacy
from nlp_service.inference.spacy_pipeline import transient_docs

# A code is a run of code characters from its first letter, digit or '#' to its last letter or digit. Found
# as the maximal run, then trimmed: a regex ending ``[...]*[A-Za-z0-9]`` backtracks over every trailing
# '#', '_', ... at every start, quadratic on a text of '#' (0.4 s per 10,000 characters).
CODE_RUN_RE = re.compile(r"[A-Za-z0-9_\-/.#]+")
_LEAD, _TRAIL = "_-/.", "_-/.#"
MAX_TERM = 100
K1, B = 1.2, 0.75


def load_spacy(name: str) -> Any:
    """The shared spaCy pipeline without parser and NER (lemmas only need the tagger)."""
    return shared_spacy(name, exclude=("parser", "ner", "senter"))


def _code_matches(text: str) -> list[str]:
    """Each run of code characters trimmed to start at a letter, digit or '#' and end at a letter or digit
    (linear time)."""
    out = []
    for run in CODE_RUN_RE.findall(text):
        token = run.lstrip(_LEAD).rstrip(_TRAIL)
        if token:
            out.append(token)
    return out


def _codes(text: str) -> list[str]:
    out: list[str] = []
    for match in _code_matches(text):
        token = match.lower().lstrip("#")
        if not any(ch.isdigit() for ch in token):
            continue
        out.append(token)
        parts = [p for p in re.split(r"[^a-z0-9]+", token) if p and any(ch.isdigit() for ch in p)]
        if len(parts) > 1 or (parts and parts[0] != token):
            out.extend(parts)
    return out


class KeywordAnalyzer:
    """Turns texts into bags of terms; thread-safe (spaCy runs one batch at a time, in a memory zone)."""

    def __init__(self, spacy_model: str) -> None:
        self.spacy_model = spacy_model

    @property
    def nlp(self) -> Any:
        return load_spacy(self.spacy_model)

    def terms(self, texts: Sequence[str]) -> list[Counter[str]]:
        bags = transient_docs(self.nlp, texts, _lemma_bag)
        for text, bag in zip(texts, bags, strict=True):
            bag.update(code for code in _codes(text) if len(code) <= MAX_TERM)
        return bags


def _lemma_bag(doc: Any) -> Counter[str]:
    """Lowercased lemmas of a Doc's content words (codes, which hold digits, come from the regex)."""
    bag: Counter[str] = Counter()
    for tok in doc:
        if tok.is_stop or tok.is_punct or tok.is_space or tok.like_url:
            continue
        if any(ch.isdigit() for ch in tok.text):
            continue  # codes come from the regex, unsplit
        lemma = (tok.lemma_ or tok.text).lower().strip()
        if lemma and len(lemma) <= MAX_TERM and any(ch.isalnum() for ch in lemma):
            bag[lemma] += 1
    return bag


class CorpusStats:
    """Document count and mean document length, cached for a few seconds."""

    def __init__(self, ttl_s: float = 10.0) -> None:
        self.ttl_s = ttl_s
        self._at = -math.inf
        self._value = (0, 0.0)
        self._lock = threading.Lock()

    def get(self, db_session: Session) -> tuple[int, float]:
        with self._lock:
            if time.monotonic() - self._at < self.ttl_s:
                return self._value
        n, total = db_session.execute(
            select(func.count(), func.coalesce(func.sum(Prediction.n_terms), 0))
        ).one()
        value = (int(n), (float(total) / n) if n else 0.0)
        with self._lock:
            self._value, self._at = value, time.monotonic()
        return value

    def invalidate(self) -> None:
        with self._lock:
            self._at = -math.inf


def bm25(
    *,
    db_session: Session,
    query_terms: Counter[str],
    filters: CommentFilter | None,
    limit: int,
    stats: CorpusStats,
    max_postings: int = 200_000,
) -> list[tuple[int, float]]:
    """(row id, BM25 score) of the best ``limit`` comments matching ``filters`` and any query term."""
    terms = [t for t in query_terms if t]
    if not terms:
        return []
    n_docs, avgdl = stats.get(db_session)
    if n_docs == 0:
        return []
    df = dict(
        db_session.execute(
            select(CommentTerm.term, func.count())
            .where(CommentTerm.term.in_(terms))
            .group_by(CommentTerm.term)
        ).all()
    )
    terms = [t for t in terms if df.get(t)]
    if not terms:
        return []
    # Very common terms carry little weight and many postings: keep the rarest within a postings budget.
    terms.sort(key=lambda t: df[t])
    kept: list[str] = []
    budget = 0
    for t in terms:
        if kept and budget + df[t] > max_postings:
            break
        kept.append(t)
        budget += df[t]
    idf = {t: math.log(1.0 + (n_docs - df[t] + 0.5) / (df[t] + 0.5)) for t in kept}
    stmt = (
        select(CommentTerm.row_id, CommentTerm.term, CommentTerm.tf, Prediction.n_terms)
        .join(Prediction, Prediction.row_id == CommentTerm.row_id)
        .join(Comment, Comment.row_id == CommentTerm.row_id)
        .where(CommentTerm.term.in_(kept), *filter_conditions(filters))
    )
    rows = db_session.execute(stmt).all()
    if not rows:
        return []
    row_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    tf = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
    dl = np.fromiter((r[3] for r in rows), dtype=np.float64, count=len(rows))
    w = np.fromiter((idf[r[1]] * query_terms[r[1]] for r in rows), dtype=np.float64, count=len(rows))
    part = w * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / max(avgdl, 1e-9)))
    uniq, inverse = np.unique(row_ids, return_inverse=True)
    scores = np.zeros(len(uniq))
    np.add.at(scores, inverse, part)
    top = np.argsort(-scores, kind="stable")[:limit]
    return [(int(uniq[i]), float(scores[i])) for i in top]
