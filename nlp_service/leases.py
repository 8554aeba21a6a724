"""Leased background jobs on a database table: the one claim mechanism detection and re-tag jobs share.

A job table has ``id``, ``status`` (queued, running, ...), ``attempts`` (counted at claim),
``claimed_by``, ``claimed_until`` (the lease), ``created_at``, ``started_at``, ``finished_at`` and
``error``. The oldest queued job, or a running one whose lease passed, is claimed (PostgreSQL:
``SKIP LOCKED``; SQLite: a guarded update); one out of attempts is failed instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from nlp_service.db import rowcount
from nlp_service.timestamps import utcnow

J = TypeVar("J", bound=Any)  # a mapped job class with the columns above


def claimable(table: type[Any], now: datetime) -> Any:
    """Queued, or running with a lapsed lease."""
    return or_(table.status == "queued", and_(table.status == "running", table.claimed_until <= now))


def mine(table: type[Any], job: Any) -> Any:
    """Rows still held by this claim of ``job`` (same worker, same attempt, still running)."""
    return and_(
        table.id == job.id,
        table.claimed_by == job.claimed_by,
        table.attempts == job.attempts,
        table.status == "running",
    )


def claim(
    table: type[J],
    *,
    db_session: Session,
    worker_id: str,
    lease_s: float,
    max_attempts: int,
    now: datetime | None = None,
    where: Any = None,
) -> J | None:
    """Claim the oldest claimable job of ``table`` (among those ``where`` admits); a job out of attempts
    is failed instead (None)."""
    now = now or utcnow()
    stmt = select(table).where(claimable(table, now)).order_by(table.created_at).limit(1)
    if where is not None:
        stmt = stmt.where(where)
    if db_session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    job = db_session.scalars(stmt.execution_options(populate_existing=True)).first()
    if job is None:
        return None
    if job.attempts >= max_attempts:
        job.status, job.finished_at, job.claimed_until = "failed", now, None
        job.error = job.error or f"gave up after {job.attempts} attempts (the worker died or timed out)"
        db_session.flush()
        return None
    claimed = db_session.execute(
        update(table)
        .where(table.id == job.id, table.attempts == job.attempts, claimable(table, now))
        .values(
            status="running",
            attempts=job.attempts + 1,
            claimed_by=worker_id,
            claimed_until=now + timedelta(seconds=lease_s),
            started_at=job.started_at or now,
        )
        .execution_options(synchronize_session=False)
    )
    if not rowcount(claimed):
        return None  # another worker was first (SQLite)
    db_session.refresh(job)
    return job
