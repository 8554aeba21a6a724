"""Claim, complete, release and expire idempotency records. Functions flush; callers own transactions.

A record is claimed (``running``, with a token and a lock) in its own short transaction before the work; the
work's own transaction completes it (``done``, with the response) only while it still holds the token, so the
work and its stored response commit together or not at all. A failed request releases its claim (nothing was
done: a retry runs again). A claim whose process died is taken over once its lock has passed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nlp_service.db import rowcount
from nlp_service.errors import Conflict, InvalidInput
from nlp_service.idempotency.tables import IdempotencyRecord


@dataclass(frozen=True)
class Claimed:
    """This request owns the record: do the work, then :func:`complete` with ``token``."""

    token: str


@dataclass(frozen=True)
class Stored:
    """A previous request with this key finished: its response (sealed body)."""

    status_code: int
    body: str


def _in_progress(retry_after_s: float) -> Conflict:
    return Conflict(
        "a request with this Idempotency-Key is still in progress: retry later",
        detail=[{"field": "Idempotency-Key", "message": "in progress", "type": "idempotency_in_progress"}],
        headers={"Retry-After": str(max(1, int(retry_after_s) + 1))},
    )


def claim(
    *, db_session: Session, record_id: str, fingerprint: str, ttl_s: float, lock_s: float
) -> Claimed | Stored:
    """Claim ``record_id`` for this request, or give the stored response of an earlier one.

    Raises :class:`InvalidInput` (422) when the key was used for a different request, and :class:`Conflict`
    (409) while another request with the key is running.
    """
    now = datetime.now(UTC)
    db_session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.id == record_id, IdempotencyRecord.expires_at <= now
        )
    )
    row = db_session.execute(
        select(IdempotencyRecord).where(IdempotencyRecord.id == record_id).with_for_update()
    ).scalar_one_or_none()
    token = secrets.token_hex(16)
    locked_until = now + timedelta(seconds=lock_s)
    if row is None:
        db_session.add(
            IdempotencyRecord(
                id=record_id,
                fingerprint=fingerprint,
                state="running",
                token=token,
                locked_until=locked_until,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_s),
            )
        )
        try:
            db_session.flush()
        except IntegrityError:  # a concurrent request with the same key inserted it first
            raise _in_progress(lock_s) from None
        return Claimed(token)
    if row.fingerprint != fingerprint:
        raise InvalidInput(
            "this Idempotency-Key was already used for a different request (another body or endpoint)",
            detail=[
                {
                    "field": "Idempotency-Key",
                    "message": "reused with a different request",
                    "type": "idempotency_key_reused",
                }
            ],
        )
    if row.state == "done" and row.status_code is not None and row.body is not None:
        return Stored(row.status_code, row.body)
    if row.locked_until > now:
        raise _in_progress((row.locked_until - now).total_seconds())
    taken = db_session.execute(  # the claim's process died: take it over, once
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == record_id,
            IdempotencyRecord.token == row.token,
            IdempotencyRecord.state == "running",
        )
        .values(token=token, locked_until=locked_until)
        .execution_options(synchronize_session=False)
    )
    if rowcount(taken) != 1:
        raise _in_progress(lock_s)
    return Claimed(token)


def complete(*, db_session: Session, record_id: str, token: str, status_code: int, body: str) -> None:
    """Store the response in the work's transaction; :class:`Conflict` (the work rolls back) if the claim
    was taken over meanwhile."""
    done = db_session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == record_id,
            IdempotencyRecord.token == token,
            IdempotencyRecord.state == "running",
        )
        .values(state="done", status_code=status_code, body=body)
        .execution_options(synchronize_session=False)
    )
    if rowcount(done) != 1:
        raise Conflict("this request's Idempotency-Key claim was taken over by a retry: nothing was done")


def release(*, db_session: Session, record_id: str, token: str) -> None:
    """Forget a claim whose request failed (its work rolled back), so that a retry runs again."""
    db_session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.id == record_id,
            IdempotencyRecord.token == token,
            IdempotencyRecord.state == "running",
        )
    )


def delete_expired(*, db_session: Session, limit: int = 1000) -> int:
    """Delete up to ``limit`` expired records; the number deleted."""
    now = datetime.now(UTC)
    ids = (
        db_session.execute(
            select(IdempotencyRecord.id).where(IdempotencyRecord.expires_at <= now).limit(limit)
        )
        .scalars()
        .all()
    )
    if ids:
        db_session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)))
    return len(ids)
