"""Process memory settings for long-running servers and workers (glibc malloc).

A server that encodes batches of varying size allocates and frees tensors of many sizes from several threads.
glibc keeps freed memory inside its heaps unless it lies at the very top of one, so RSS creeps up although
the memory in use does not (measured in a 100k-comment ingest: 544 MB of heap held, 362 MB in use;
``malloc_trim(0)`` gave 143 MB back at once). Three knobs bound this: fewer arenas, a fixed mmap threshold
(large blocks come from ``mmap`` and go back to the system when freed) and a periodic ``malloc_trim``.
``python bench/soak.py --minutes 10``: RSS +56% with the arena cap alone, +16.8% adding the 30 s trim, +4.9%
adding the fixed 256 KiB mmap threshold (encoder throughput unchanged within noise).
Elsewhere than glibc, each is a no-op that says so by returning False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

# glibc mallopt parameters
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


@functools.cache  # find_library runs ldconfig: look once, not at every trim
def _libc() -> Any | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - glibc only
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        log.debug("glibc malloc not found; malloc settings left as they are")
        return None
    return libc


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas (like ``MALLOC_ARENA_MAX``) so that threads allocating tensors and rows do
    not each grow and fragment an arena of their own: a soak's RSS grew ~20 KB per ingested comment without
    it, ~4.5 KB with 2 arenas. Returns False where nothing changed (0, or no glibc)."""
    libc = _libc() if arenas > 0 else None
    return bool(libc and libc.mallopt(M_ARENA_MAX, arenas))


def fix_mmap_threshold(threshold_bytes: int) -> bool:
    """Serve blocks of at least ``threshold_bytes`` from ``mmap`` (returned to the system on free).

    A fixed threshold also stops glibc from raising it after each large free (up to 32 MB), which otherwise
    moves tensor-sized blocks into the heap where they fragment it. The trim threshold is set to twice the
    mmap threshold, as glibc itself would. Returns False where nothing changed (0, or no glibc)."""
    libc = _libc() if threshold_bytes > 0 else None
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold_bytes)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, 2 * threshold_bytes)
    )


def trim_heap() -> bool:
    """Give free heap pages back to the system (``malloc_trim(0)``); True if any were released."""
    libc = _libc()
    return bool(libc and libc.malloc_trim(0))


class HeapTrimmer:
    """A daemon thread calling :func:`trim_heap` every ``interval_s`` seconds until stopped."""

    def __init__(self, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.interval_s = interval_s
        self.trims = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heap-trimmer", daemon=True)

    def start(self) -> HeapTrimmer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                trim_heap()
                self.trims += 1
            except Exception:  # never let housekeeping kill the process
                log.exception("malloc_trim failed")


def configure_process_memory(
    *, arenas: int, mmap_threshold_bytes: int, trim_interval_s: float
) -> HeapTrimmer | None:
    """Apply the malloc settings of a server or worker process; returns the running trimmer, if any."""
    limit_malloc_arenas(arenas)
    fix_mmap_threshold(mmap_threshold_bytes)
    if trim_interval_s > 0 and _libc() is not None:
        return HeapTrimmer(trim_interval_s).start()
    return None


# -- the memory model: what a server's RSS gains per stored comment ----------------------------------------
FAISS_ID_BYTES = 56  # IndexIDMap2: the id array (8 B) and the reverse hash map's node and bucket (~48 B)
PYTHON_ID_BYTES = 100  # the vector index's Python set of row ids: an int object and its share of the table
HNSW_EXTRA_BYTES = 16  # per HNSW vector besides its level-0 links: level, offsets, upper-level links (~1/M)


def bytes_per_stored_comment(*, dim: int, index_kind: str, hnsw_m: int = 32) -> int:
    """RSS a server gains per stored comment, all of it in the vector index (see the README's memory model).

    Everything else a comment has lives in the database; its page cache, spaCy's vocab (memory zones) and the
    malloc heap (trimmed) are bounded, so they do not grow with the number of comments.
    """
    per_vector = 4 * dim + FAISS_ID_BYTES + PYTHON_ID_BYTES
    if index_kind == "hnsw":
        per_vector += 2 * hnsw_m * 4 + HNSW_EXTRA_BYTES
    return per_vector
