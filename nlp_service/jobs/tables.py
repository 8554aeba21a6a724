"""Tables of the job framework: ``jobs`` (one row per job), ``job_slices`` (one row per committed slice:
a slice commits at most once, enforced by the primary key) and ``job_files`` (uploaded input, in chunks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from nlp_service.db import Base, UTCDateTime


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created_at", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # job_...
    kind: Mapped[str] = mapped_column(String(32), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # queued, running, succeeded, failed, cancelled
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    slices: Mapped[int] = mapped_column(Integer, default=0)  # committed slices (the next one's number)
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # next slice starts here (None: not planned)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(1000))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(String(100))  # the API key id (None: keys off / system)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims, counted at claim
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class JobSlice(Base):
    """A committed slice: written in the same transaction as the slice's work, so a slice redone by a
    second worker would collide on the primary key instead of being applied twice."""

    __tablename__ = "job_slices"

    job_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class JobFile(Base):
    """An uploaded input file of a job, in chunks of ``jobs.files.CHUNK_BYTES``."""

    __tablename__ = "job_files"

    job_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
