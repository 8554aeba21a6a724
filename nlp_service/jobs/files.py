"""A job's uploaded input file in ``job_files``: stored in chunks of :data:`CHUNK_BYTES` with the job, read
back as a seekable binary file (only the chunks a read touches are loaded)."""

from __future__ import annotations

import io
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.jobs.tables import JobFile

CHUNK_BYTES = 4 * 1024 * 1024
CACHE_KEY = "job-file-chunk"  # a reader's cache entry: (job id, chunk number, its bytes)


def store(*, db_session: Session, job_id: str, source: IO[bytes]) -> int:
    """Copy ``source`` (read to its end) into ``job_id``'s chunks; returns the bytes stored."""
    seq, size = 0, 0
    while data := source.read(CHUNK_BYTES):
        db_session.add(JobFile(job_id=job_id, seq=seq, data=data))
        db_session.flush()  # one chunk in memory at a time
        seq, size = seq + 1, size + len(data)
    return size


class JobFileReader(io.RawIOBase):
    """A read-only, seekable view of a stored file (wrap it in ``io.BufferedReader`` for ``readline``);
    keeps the last chunk it loaded, in ``cache`` if given (a dict that outlives the reader, so that the next
    slice of a job does not load the same chunk again). Use it inside the session's transaction."""

    def __init__(
        self, *, db_session: Session, job_id: str, size: int, cache: dict[str, Any] | None = None
    ) -> None:
        self._db = db_session
        self._job_id = job_id
        self._size = size
        self._pos = 0
        self._cache = cache if cache is not None else {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _load(self, seq: int) -> bytes:
        cached = self._cache.get(CACHE_KEY)
        if cached is None or cached[:2] != (self._job_id, seq):
            stmt = select(JobFile.data).where(JobFile.job_id == self._job_id, JobFile.seq == seq)
            cached = (self._job_id, seq, bytes(self._db.scalar(stmt) or b""))
            self._cache[CACHE_KEY] = cached
        return bytes(cached[2])

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._pos >= self._size:
            return 0
        seq, start = divmod(self._pos, CHUNK_BYTES)
        data = self._load(seq)[start : start + len(buffer)]
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)
