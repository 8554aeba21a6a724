"""Search: the index lifecycle (open, catch up, save, update after ingest) and the query strategies.

Each replica keeps its own index: what it ingests is added at once, what other replicas store is found by a
background sync every ``search_sync_interval_s`` (row ids above a watermark, plus recent gaps below it that
may still commit; see ``sync.py``).

Filtered queries stay correct whatever the filter's selectivity: if at most ``search_filter_first_max``
comments match, they are scored exactly (vectors reconstructed from the index, or read from the database when
the index has not caught up yet); otherwise the index is searched with a growing over-fetch until ``k`` hits
pass the filter. The over-fetch stops at ``search_max_fetch`` neighbours: a filter that broad but matching
hardly any of them returns fewer than ``k`` results, flagged ``capped`` (the best matches among those
neighbours, not necessarily the best overall). Results are always re-read from the database (the source of
truth), so a comment deleted a moment ago never shows up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.comments import embeddings as stored
from nlp_service.comments import service as comments
from nlp_service.comments.schemas import CommentFilter
from nlp_service.comments.serialize import comment_fields, stored_topics
from nlp_service.comments.tables import Comment, Prediction
from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.errors import Conflict, NotFound
from nlp_service.inference.schemas import topics_out
from nlp_service.search.faiss_index import IndexParams
from nlp_service.search.identity import database_id
from nlp_service.search.index import VectorIndex
from nlp_service.search.keywords import CorpusStats, KeywordAnalyzer, bm25
from nlp_service.search.schemas import SearchHit, SearchResponse
from nlp_service.search.sync import Watermark

log = logging.getLogger(__name__)

RRF_K = 60  # reciprocal rank fusion constant
SYNC_BATCH = 10_000  # row ids per sync query
SPOT_CHECK = 64  # newest saved vectors compared with the database's at start
REEMBED_CHECK_S = 5.0  # how often the sync loop looks for re-embedding progress (then catches up)
SYNC_LOOKBACK = 2_000  # row ids below the index's highest re-checked at start (two ingests in flight)


class SearchService:
    """Owns the vector index, the keyword analyzer and corpus statistics of one app."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], *, dim: int = 384) -> None:
        self.settings = settings
        self.sessions = sessions
        params = IndexParams(
            dim=dim,
            exact_max=settings.search_exact_max,
            hnsw_m=settings.search_hnsw_m,
            ef_construction=settings.search_hnsw_ef_construction,
            ef_search=settings.search_hnsw_ef_search,
        )
        self.index = VectorIndex(params, path=settings.var_dir / "search" / "vectors.faiss")
        self.index.configure(loader=self._load_all, differ=self._diff)
        self.keywords = KeywordAnalyzer(settings.spacy_model)
        self.stats = CorpusStats()
        self._stop = threading.Event()
        self._saver: threading.Thread | None = None
        self._syncer: threading.Thread | None = None
        self.watermark = Watermark()
        # The encoder whose vectors the index holds (set once the engine is loaded; None: every vector)
        self.encoder: str | None = None
        self._reembed_seen: object = None  # the last re-embedding job update the index caught up with
        self._reembed_checked = -REEMBED_CHECK_S  # monotonic time of the last look at re-embedding jobs

    # -- lifecycle -------------------------------------------------------------------------------------
    def _load_all(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        with self.sessions() as session:
            yield from stored.iter_embeddings(db_session=session, encoder=self.encoder)

    def _diff(self) -> tuple[np.ndarray, Callable[[np.ndarray], Iterator[tuple[np.ndarray, np.ndarray]]]]:
        with self.sessions() as session:
            ids = stored.all_row_ids(db_session=session, encoder=self.encoder)

        def load(wanted: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            with self.sessions() as session:
                for start in range(0, len(wanted), 10_000):
                    yield stored.embeddings(
                        db_session=session,
                        row_ids=wanted[start : start + 10_000].tolist(),
                        encoder=self.encoder,
                    )

        return ids, load

    def open(self) -> None:
        """Load the saved index (if saved for this database) and catch it up from the database in the
        background; else rebuild it."""
        with session_scope(self.sessions) as session:
            self.index.source_id = database_id(db_session=session)
        loaded = self.index.load()
        if loaded and not self._newest_vectors_match():
            log.warning("saved vector index disagrees with the database (a restore?); rebuilding it")
            self.index.clear()
            loaded = False
        log.info(
            "vector index: %s", f"loaded {len(self.index)} vectors" if loaded else "none saved, building"
        )
        self.index.request("catch_up" if loaded else "rebuild")
        if self.settings.search_save_interval_s > 0:
            self._saver = threading.Thread(target=self._save_loop, name="vector-index-saver", daemon=True)
            self._saver.start()
        if self.settings.search_sync_interval_s > 0:
            self._syncer = threading.Thread(target=self._sync_loop, name="vector-index-sync", daemon=True)
            self._syncer.start()

    def _newest_vectors_match(self, n: int = SPOT_CHECK) -> bool:
        """Whether the database's ``n`` newest vectors within the index's row-id range equal the index's.
        A backup of this database restored (same identity) hands the ids above the backup to other
        comments: those are the newest ones in that range. Ids only one side has are no mismatch (the
        catch-up adds or drops them)."""
        with self.sessions() as session:
            ids, theirs = stored.newest_embeddings(
                db_session=session, at_most=self.index.max_row_id, limit=n, encoder=self.encoder
            )
        found, mine = self.index.reconstruct(ids.tolist())
        if not len(found):
            return True
        row = {int(i): k for k, i in enumerate(ids)}
        return bool(np.allclose(mine, theirs[[row[int(i)] for i in found]], atol=1e-5))

    def _save_loop(self) -> None:
        while not self._stop.wait(self.settings.search_save_interval_s):
            if self.index.dirty and not self.index.building:
                try:
                    self.index.save()
                except Exception:
                    log.exception("saving the vector index failed")

    def _sync_loop(self) -> None:
        while not self.index.ready.wait(0.5):  # the first catch-up/rebuild covers what is stored now
            if self._stop.is_set():
                return
        started = False
        while not self._stop.wait(self.settings.search_sync_interval_s):
            try:
                if not started:
                    self.start_watermark()
                    started = True
                while self.sync() and not self._stop.is_set():
                    pass
            except Exception:
                log.exception("vector index sync failed; retrying")

    def start_watermark(self) -> None:
        """Start from the index's highest row id; the ids just below it that it lacks may still commit."""
        high = self.index.max_row_id
        low = max(0, high - SYNC_LOOKBACK)
        self.watermark = Watermark(high=low)
        self.watermark.advance([i for i in range(low + 1, high + 1) if i in self.index], time.monotonic())

    def use_encoder(self, encoder: str) -> None:
        """Hold only ``encoder``'s vectors from now on (the engine's, once loaded): vectors another encoder
        made stay out of the index until a re-embedding job replaces them."""
        self.encoder = encoder
        with self.sessions() as session:
            others = stored.other_encoders(db_session=session, encoder=encoder)
        if others:
            log.warning(
                "vector index: %d stored vectors were made by other encoders (%s) and are left out of search "
                'until re-embedded (POST /v1/jobs {"kind": "reembed"})',
                sum(others.values()),
                ", ".join(sorted(others)),
            )
            self.index.request("catch_up")

    def _reembedded_since_last_sync(self, session: Session) -> bool:
        """Whether a re-embedding job moved since the last look (its vectors then join the index); looks
        at most every ``REEMBED_CHECK_S``, so an idle sync stays one query."""
        from nlp_service.jobs.service import last_update

        now = time.monotonic()
        if now - self._reembed_checked < REEMBED_CHECK_S:
            return False
        self._reembed_checked = now
        seen = last_update(db_session=session, kind="reembed")
        moved = seen != self._reembed_seen
        self._reembed_seen = seen
        return moved and seen is not None

    def sync(self) -> bool:
        """Add the comments stored since the last sync (by any replica) that the index lacks. Cheap when
        nothing is new: one indexed range query (and one for the gaps). True if there may be more."""
        mark = self.watermark
        with self.sessions() as session:
            if self.encoder is not None and self._reembedded_since_last_sync(session):
                self.index.request("catch_up")
            back = comments.filter_row_ids(db_session=session, row_ids=sorted(mark.gaps), filters=None)
            new = stored.row_ids_after(db_session=session, after=mark.high, limit=SYNC_BATCH)
            missing = [i for i in (*back, *new) if i not in self.index]
            if missing:
                ids, vecs = stored.embeddings(db_session=session, row_ids=missing, encoder=self.encoder)
        if missing and len(ids):
            self.index.add(ids, vecs)
            self.stats.invalidate()
        if not mark.advance([*back, *new], time.monotonic()):
            log.warning("vector index sync lost track of some row ids; catching up from the database")
            self.index.request("catch_up")
        return len(new) == SYNC_BATCH

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self.index.wait(timeout) and self.index.dirty:
            self.index.save()

    # -- updates after committed writes ------------------------------------------------------------------
    def on_created(self, created: comments.Created) -> None:
        """Add committed comments to the index (on failure, a catch-up from the DB repairs it)."""
        self.stats.invalidate()
        if created.row_ids:
            try:
                self.index.add(created.row_ids, np.vstack(created.embeddings))
            except Exception:
                log.exception("vector index update failed; catching up from the database")
                self.index.request("catch_up")

    def on_deleted(self, row_id: int) -> None:
        """Drop a deleted comment from the index (search re-reads the DB, so it never shows up anyway)."""
        self.stats.invalidate()
        try:
            self.index.remove([row_id])
        except Exception:
            log.exception("vector index removal failed; catching up from the database")
            self.index.request("catch_up")


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
