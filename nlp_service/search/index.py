"""The vector index of comment embeddings, keyed by the comments' row ids.

- Exact search up to ``exact_max`` vectors, HNSW above (built by :mod:`faiss_index`); ids are row ids.
- HNSW cannot remove vectors: deleted ids become tombstones, filtered at query time, and a background
  rebuild drops them once they are many.
- Rebuilds and catch-ups run on one background thread. A rebuild builds a new index aside while queries and
  writes keep using the current one; the writes made meanwhile are journaled and replayed onto the new index
  before the swap.
- Readers (search, reconstruct, save) share a lock; writers (add, remove, swap) take it exclusively.
- A saved index records ``source_id``, the identity of the database its vectors came from; loading it for
  another source is refused (the caller rebuilds), as row ids mean other comments there (files:
  :mod:`persistence`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import faiss
import numpy as np

from nlp_service.search import persistence
from nlp_service.search.faiss_index import IndexParams, build_index, index_kind, make_index, omp_threads
from nlp_service.search.rwlock import RWLock

log = logging.getLogger(__name__)

Batches = Iterable[tuple[np.ndarray, np.ndarray]]  # (int64 ids, float32 (n, dim) vectors)


def _as_batch(ids: Iterable[int] | np.ndarray, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
    vecs = np.ascontiguousarray(np.asarray(vecs, dtype=np.float32).reshape(len(ids), -1))
    return ids, vecs


class VectorIndex:
    """Thread-safe ANN index over (row id, embedding) pairs; see the module docstring."""

    def __init__(
        self, params: IndexParams, *, path: Path | None = None, source_id: str | None = None
    ) -> None:
        self.params = params
        self.path = path
        self.source_id = source_id  # the identity of the database the vectors come from
        self._lock = RWLock()
        self._index = make_index(params, 0)
        self._ids: set[int] = set()
        self._tombstones: set[int] = set()
        self._tomb_version = 0
        self._selector: tuple[int, faiss.IDSelector, faiss.IDSelector] | None = None
        self._journal: list[tuple[str, np.ndarray, np.ndarray | None]] | None = None
        self._job_lock = threading.Lock()
        self._job: threading.Thread | None = None
        self._pending: str | None = None  # "rebuild" | "catch_up" requested while a job runs
        self._loader: Callable[[], Batches] | None = None
        self._differ: Callable[[], tuple[np.ndarray, Callable[[np.ndarray], Batches]]] | None = None
        self.dirty = False
        self.last_build_s: float | None = None
        self.ready = threading.Event()  # set once the first catch-up/rebuild finished

    # -- state -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, row_id: int) -> bool:
        return int(row_id) in self._ids

    @property
    def max_row_id(self) -> int:
        with self._lock.read():  # not while holding the lock: a waiting writer would block this reader
            return max(self._ids, default=0)

    @property
    def kind(self) -> str:
        return index_kind(self._index)

    @property
    def building(self) -> bool:
        return self._job is not None

    def status(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "size": len(self._ids),
            "tombstones": len(self._tombstones),
            "building": self.building,
            "ready": self.ready.is_set(),
            "max_row_id": self.max_row_id,
            "last_build_s": self.last_build_s,
        }

    # -- writes ----------------------------------------------------------------------------------------
    def _add_to(self, index: faiss.Index, present: set[int], ids: np.ndarray, vecs: np.ndarray) -> None:
        keep = np.fromiter((int(i) not in present for i in ids), dtype=bool, count=len(ids))
        if keep.any():
            ids, vecs = ids[keep], vecs[keep]
            index.add_with_ids(vecs, ids)
            present.update(int(i) for i in ids)

    def _remove_from(
        self, index: faiss.Index, present: set[int], tombstones: set[int], ids: np.ndarray
    ) -> None:
        gone = [int(i) for i in ids if int(i) in present]
        if not gone:
            return
        if index_kind(index) == "flat":
            index.remove_ids(faiss.IDSelectorBatch(np.asarray(gone, dtype=np.int64)))
        else:
            tombstones.update(gone)
            self._tomb_version += 1
        present.difference_update(gone)

    def add(self, ids: Iterable[int] | np.ndarray, vecs: np.ndarray) -> None:
        """Add vectors (ids already present are skipped)."""
        ids, vecs = _as_batch(ids, vecs)
        if not len(ids):
            return
        omp_threads(1)
        with self._lock.write():
            self._add_to(self._index, self._ids, ids, vecs)
            if self._journal is not None:
                self._journal.append(("add", ids, vecs))
            self.dirty = True
        if self._job is None and self.kind == "flat" and len(self._ids) > self.params.exact_max:
            self.request("rebuild")  # (a running job re-checks the size when it ends)

    def remove(self, ids: Iterable[int] | np.ndarray) -> None:
        """Remove vectors (HNSW: tombstoned until the next rebuild)."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        with self._lock.write():
            self._remove_from(self._index, self._ids, self._tombstones, ids)
            if self._journal is not None:
                self._journal.append(("remove", ids, None))
            self.dirty = True
        if self._job is None and self._too_many_tombstones():
            self.request("rebuild")

    def _too_many_tombstones(self) -> bool:
        return len(self._tombstones) > max(100, self.params.tombstone_fraction * max(1, len(self._ids)))

    def _needs_rebuild(self) -> bool:
        n = len(self._ids)
        if self.kind == "flat":
            return n > self.params.exact_max
        return n <= self.params.exact_max // 2 or self._too_many_tombstones()

    # -- reads -----------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (nq, k) by inner product, best first; missing results have id -1."""
        queries = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, self.params.dim))
        omp_threads(1)
        with self._lock.read():
            index, tomb = self._index, self._tombstones
            n = index.ntotal
            if n == 0:
                return np.full((len(queries), k), -np.inf, np.float32), np.full(
                    (len(queries), k), -1, np.int64
                )
            kk = min(n, k)
            if index_kind(index) == "hnsw":
                params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
                params.efSearch = max(self.params.ef_search, kk)
                if tomb:
                    params.sel = self._tombstone_selector()  # deleted ids never enter the results
                scores, ids = index.search(queries, kk, params=params)
            else:
                scores, ids = index.search(queries, kk)
            if tomb:
                dead = np.isin(ids, np.fromiter(tomb, dtype=np.int64, count=len(tomb)))
                ids = np.where(dead, -1, ids)
                scores = np.where(dead, -np.inf, scores)
        out_s = np.full((len(queries), k), -np.inf, np.float32)
        out_i = np.full((len(queries), k), -1, np.int64)
        for row in range(len(queries)):
            live = ids[row] >= 0
            s, i = scores[row][live][:k], ids[row][live][:k]
            out_s[row, : len(s)], out_i[row, : len(i)] = s, i
        return out_s, out_i

    def _tombstone_selector(self) -> faiss.IDSelector:
        """An ``IDSelectorNot(IDSelectorBatch(tombstones))``, cached until the tombstones change."""
        cached = self._selector
        if cached is not None and cached[0] == self._tomb_version:
            return cached[2]
        batch = faiss.IDSelectorBatch(
            np.fromiter(self._tombstones, dtype=np.int64, count=len(self._tombstones))
        )
        selector = faiss.IDSelectorNot(batch)
        self._selector = (self._tomb_version, batch, selector)  # keep ``batch`` alive with the selector
        return selector

    def reconstruct(self, ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(found ids, their vectors) for the ids present in the index."""
        with self._lock.read():
            found = np.asarray([int(i) for i in ids if int(i) in self._ids], dtype=np.int64)
            if not len(found):
                return found, np.zeros((0, self.params.dim), np.float32)
            return found, self._index.reconstruct_batch(found)

    def clear(self) -> None:
        """Drop every vector (e.g. before a rebuild, when the saved ones cannot be trusted)."""
        with self._lock.write():
            self._index = make_index(self.params, 0)
            self._ids, self._tombstones = set(), set()
            self._tomb_version += 1
            self.dirty = True

    # -- background jobs ---------------------------------------------------------------------------------
    def configure(
        self,
        *,
        loader: Callable[[], Batches],
        differ: Callable[[], tuple[np.ndarray, Callable[[np.ndarray], Batches]]],
    ) -> None:
        """Where jobs read the truth: ``loader()`` yields every (ids, vectors) batch; ``differ()`` returns
        all current ids and a function loading the vectors of given ids."""
        self._loader, self._differ = loader, differ

    def request(self, job: str) -> None:
        """Schedule ``"rebuild"`` or ``"catch_up"`` on the background thread (coalesced)."""
        with self._job_lock:
            if self._pending != "rebuild":
                self._pending = job
            if self._job is None:
                self._job = threading.Thread(target=self._run_jobs, name="vector-index", daemon=True)
                self._job.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no background job runs; True if idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self._job
            if job is None:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            job.join(remaining)

    def _run_jobs(self) -> None:
        while True:
            with self._job_lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._job = None
                    return
            try:
                if job == "rebuild":
                    self._rebuild()
                else:
                    self._catch_up()
                self.ready.set()
                if self.path is not None:
                    self.save()
            except Exception:  # the index keeps serving; the next request retries
                log.exception("vector index %s failed", job)
                with self._lock.write():
                    self._journal = None

    def _rebuild(self) -> None:
        assert self._loader is not None, "configure() first"
        t0 = time.perf_counter()
        with self._lock.write():
            self._journal = []
        parts_i, parts_v = [], []
        for ids, vecs in self._loader():
            if len(ids):
                parts_i.append(np.asarray(ids, np.int64))
                parts_v.append(np.asarray(vecs, np.float32))
        ids = np.concatenate(parts_i) if parts_i else np.zeros(0, np.int64)
        vecs = np.vstack(parts_v) if parts_v else np.zeros((0, self.params.dim), np.float32)
        new = build_index(self.params, ids, vecs)
        present = {int(i) for i in ids}
        tomb: set[int] = set()
        with self._lock.write():
            omp_threads(1)
            for op, jids, jvecs in self._journal or []:
                if op == "add":
                    assert jvecs is not None  # "add" entries carry their vectors
                    self._add_to(new, present, jids, jvecs)
                else:
                    self._remove_from(new, present, tomb, jids)
            self._index, self._ids, self._tombstones, self._journal = new, present, tomb, None
            self._tomb_version += 1
            self.dirty = True
        self.last_build_s = time.perf_counter() - t0
        if self._needs_rebuild():  # e.g. many writes during the build
            self.request("rebuild")
        log.info("vector index rebuilt: %s, %d vectors in %.1fs", self.kind, len(present), self.last_build_s)

    def _catch_up(self) -> None:
        """Add what the source has and the index lacks; drop what the index has and the source lost."""
        assert self._differ is not None, "configure() first"
        with self._lock.write():
            self._journal = []
        truth_ids, load = self._differ()
        truth = {int(i) for i in truth_ids}
        with self._lock.read():
            mine = set(self._ids)
        missing = np.asarray(sorted(truth - mine), dtype=np.int64)
        extra = mine - truth
        batches = list(load(missing)) if len(missing) else []
        with self._lock.write():
            journal = self._journal or []
            added = {int(i) for op, ids, _ in journal if op == "add" for i in ids}
            removed = {int(i) for op, ids, _ in journal if op == "remove" for i in ids}
            for ids, vecs in batches:
                keep = np.fromiter((int(i) not in removed for i in ids), dtype=bool, count=len(ids))
                if keep.any():
                    self._add_to(self._index, self._ids, ids[keep], vecs[keep])
            stale = np.asarray(sorted(extra - added), dtype=np.int64)
            self._remove_from(self._index, self._ids, self._tombstones, stale)
            self._journal = None
            self.dirty = self.dirty or bool(len(missing) or len(stale))
        log.info("vector index caught up: +%d -%d, %d vectors", len(missing), len(stale), len(self._ids))
        if self._needs_rebuild():
            self.request("rebuild")

    # -- persistence ---------------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the index and its metadata atomically (temp files, then rename)."""
        if self.path is None:
            return
        with self._lock.read():
            tmp = persistence.write_temp(self._index, self.path)
            meta = {
                "dim": self.params.dim,
                "source_id": self.source_id,
                "kind": self.kind,
                "size": len(self._ids),
                "max_row_id": max(self._ids, default=0),
                "tombstones": sorted(self._tombstones),
                "saved_at": time.time(),
            }
            self.dirty = False
        persistence.commit(tmp, self.path, meta)

    def load(self) -> bool:
        """Load a saved index; False (and stay empty) if there is none or it does not fit (another
        dimension, or saved for another ``source_id``)."""
        if self.path is None or not self.path.is_file():
            return False
        try:
            index, ids, saved_tombstones = persistence.read(
                self.path, dim=self.params.dim, source_id=self.source_id
            )
        except Exception as exc:
            log.warning("ignoring saved vector index %s: %s", self.path, exc)
            return False
        tomb = {int(i) for i in saved_tombstones}
        with self._lock.write():
            self._index = index
            self._tombstones = tomb
            self._tomb_version += 1
            self._ids = {int(i) for i in ids} - tomb
            self.dirty = False
        return True
