"""Search: the index lifecycle (open, catch up, save, update after ingest); the queries are ``queries.py``.

Each replica keeps its own index: what it ingests is added at once, what other replicas store is found by a
background sync every ``search_sync_interval_s`` (row ids above a watermark, plus recent gaps below it that
may still commit; see ``sync.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.comments import embeddings as stored
from nlp_service.comments import queries as comments
from nlp_service.comments.service import Created
from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.search.faiss_index import IndexParams
from nlp_service.search.identity import database_id
from nlp_service.search.index import VectorIndex
from nlp_service.search.keywords import CorpusStats, KeywordAnalyzer
from nlp_service.search.sync import Watermark

log = logging.getLogger(__name__)

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
    def on_created(self, created: Created) -> None:
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
