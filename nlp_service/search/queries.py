"""Search queries: vector and hybrid (reciprocal rank fusion with BM25) over a replica's index
(``service.SearchService``), and "more like this" vectors.

Filtered queries stay correct whatever the filter's selectivity: if at most ``search_filter_first_max``
comments match, they are scored exactly (vectors reconstructed from the index, or read from the database when
the index has not caught up yet); otherwise the index is searched with a growing over-fetch until ``k`` hits
pass the filter. The over-fetch stops at ``search_max_fetch`` neighbours: a filter that broad but matching
hardly any of them returns fewer than ``k`` results, flagged ``capped`` (the best matches among those
neighbours, not necessarily the best overall). Results are always re-read from the database (the source of
truth), so a comment deleted a moment ago never shows up.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.comments import embeddings as stored
from nlp_service.comments import queries as comments
from nlp_service.comments.schemas import CommentFilter
from nlp_service.comments.serialize import comment_fields, stored_topics
from nlp_service.comments.tables import Comment, Prediction
from nlp_service.errors import Conflict, NotFound
from nlp_service.inference.schemas import topics_out
from nlp_service.search.index import VectorIndex
from nlp_service.search.keywords import bm25
from nlp_service.search.schemas import SearchHit, SearchResponse
from nlp_service.search.service import SearchService

RRF_K = 60  # reciprocal rank fusion constant


@dataclass
class _Ranked:
    row_ids: list[int]
    scores: list[float]
    strategy: str
    capped: bool = False  # the over-fetch stopped at its cap before k hits passed the filter


def _exact(
    *,
    db_session: Session,
    index: VectorIndex,
    query: np.ndarray,
    candidates: list[int],
    k: int,
    index_encoder: str | None = None,
) -> tuple[list[int], list[float]]:
    """Exact top-k among ``candidates``: vectors from the index, else from the database."""
    found, vecs = index.reconstruct(candidates)
    missing = sorted(set(candidates) - {int(i) for i in found})
    if missing:
        extra_ids, extra_vecs = stored.embeddings(
            db_session=db_session, row_ids=missing, encoder=index_encoder
        )
        if len(extra_ids):
            found = np.concatenate([found, extra_ids])
            vecs = np.vstack([vecs, extra_vecs]) if len(vecs) else extra_vecs
    if not len(found):
        return [], []
    scores = vecs @ query
    top = np.argsort(-scores, kind="stable")[:k]
    return [int(found[i]) for i in top], [float(scores[i]) for i in top]


def vector_ranking(
    *, db_session: Session, service: SearchService, query: np.ndarray, k: int, filters: CommentFilter | None
) -> _Ranked:
    """The best ``k`` comments by cosine similarity among those matching ``filters``."""
    index, limit = service.index, service.settings.search_filter_first_max
    query = np.asarray(query, dtype=np.float32).reshape(-1)
    if filters is not None and not filters.is_empty():
        candidates = comments.matching_row_ids(db_session=db_session, filters=filters, limit=limit + 1)
        if len(candidates) <= limit:
            ids, scores = _exact(
                db_session=db_session,
                index=index,
                query=query,
                candidates=candidates,
                k=k,
                index_encoder=service.encoder,
            )
            return _Ranked(ids, scores, "filter_first")
    else:
        filters = None
    cap = max(k, service.settings.search_max_fetch)
    fetch = k if filters is None else 4 * k
    checked: set[int] = set()
    passing: set[int] = set()
    while True:
        size = max(len(index), 1)
        fetch = min(fetch, size, cap)
        s, i = index.search(query[None, :], fetch)
        new = [int(x) for x in i[0] if x >= 0 and int(x) not in checked]
        passing |= comments.filter_row_ids(db_session=db_session, row_ids=new, filters=filters)
        checked.update(new)
        hits = [(int(rid), float(score)) for rid, score in zip(i[0], s[0], strict=True) if rid in passing]
        if len(hits) >= k or fetch >= size or fetch >= cap:
            hits = hits[:k]
            capped = len(hits) < k and fetch < size
            return _Ranked([h[0] for h in hits], [h[1] for h in hits], "index", capped)
        fetch *= 4


def _round(score: float | None) -> float | None:
    return None if score is None else round(score, 6)


def _hit(
    comment: Comment,
    pred: Prediction,
    score: float,
    *,
    vector_score: float | None = None,
    keyword_score: float | None = None,
) -> SearchHit:
    return SearchHit(
        **comment_fields(comment),
        score=round(score, 6),
        vector_score=_round(vector_score),
        keyword_score=_round(keyword_score),
        sentiment=pred.sentiment_label,
        sentiment_score=pred.sentiment_score,
        topics=topics_out(stored_topics(pred)),
    )


def comment_vector(
    *, db_session: Session, comment_id: str, encoder: str | None = None
) -> tuple[np.ndarray, str]:
    """The stored embedding and text of a comment (for "more like this"); ``NotFound`` if unknown,
    ``Conflict`` if another encoder than ``encoder`` made it (not re-embedded yet)."""
    row = db_session.execute(
        select(Prediction.embedding, Comment.text, Prediction.encoder)
        .join(Comment, Comment.row_id == Prediction.row_id)
        .where(Comment.id == comment_id)
    ).first()
    if row is None:
        raise NotFound(
            f"comment {comment_id!r} not found",
            detail=[{"field": "comment_id", "message": "unknown comment id"}],
        )
    if encoder is not None and row[2] is not None and row[2] != encoder:
        raise Conflict(
            f"comment {comment_id!r} has a vector of encoder {row[2]}, not the served {encoder}: "
            "it can be searched for once a re-embedding job has replaced it",
            detail=[{"field": "comment_id", "message": "vector of another encoder"}],
        )
    return np.frombuffer(row[0], dtype=np.float32), row[1]


def search(
    *,
    db_session: Session,
    service: SearchService,
    query_vector: np.ndarray,
    k: int,
    filters: CommentFilter | None,
    mode: str = "vector",
    query_terms: Counter[str] | None = None,
) -> SearchResponse:
    """Vector or hybrid search; see the module docstring for how filters are honoured."""
    t0 = time.perf_counter()
    query_vector = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    if mode == "hybrid":
        depth = max(50, 3 * k)
        vec = vector_ranking(
            db_session=db_session, service=service, query=query_vector, k=depth, filters=filters
        )
        kw = bm25(
            db_session=db_session,
            query_terms=query_terms or Counter(),
            filters=filters,
            limit=depth,
            stats=service.stats,
        )
        fused: dict[int, float] = {}
        for rank, rid in enumerate(vec.row_ids):
            fused[rid] = fused.get(rid, 0.0) + 1.0 / (RRF_K + rank + 1)
        for rank, (rid, _) in enumerate(kw):
            fused[rid] = fused.get(rid, 0.0) + 1.0 / (RRF_K + rank + 1)
        order = sorted(fused, key=lambda r: (-fused[r], r))[:k]
        rows = comments.get_by_row_ids(db_session=db_session, row_ids=order)
        vscore = dict(zip(vec.row_ids, vec.scores, strict=True))
        missing = [r for r in order if r not in vscore]
        if missing:
            ids, scores = _exact(
                db_session=db_session,
                index=service.index,
                query=query_vector,
                candidates=missing,
                k=len(missing),
            )
            vscore.update(zip(ids, scores, strict=True))
        kscore = dict(kw)
        results = [
            _hit(*rows[r], fused[r], vector_score=vscore.get(r), keyword_score=kscore.get(r))
            for r in order
            if r in rows
        ]
        strategy, capped = vec.strategy, vec.capped
    else:
        ranked = vector_ranking(
            db_session=db_session, service=service, query=query_vector, k=k, filters=filters
        )
        rows = comments.get_by_row_ids(db_session=db_session, row_ids=ranked.row_ids)
        results = [
            _hit(*rows[r], s, vector_score=s)
            for r, s in zip(ranked.row_ids, ranked.scores, strict=True)
            if r in rows
        ]
        strategy, capped = ranked.strategy, ranked.capped
    return SearchResponse(
        results=results,
        mode=mode,
        strategy=strategy,
        capped=capped or None,
        index={"kind": service.index.kind, "size": len(service.index)},
        took_ms=round((time.perf_counter() - t0) * 1000, 2),
    )
