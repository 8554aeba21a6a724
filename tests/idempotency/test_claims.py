"""Idempotency records on a real database: claim, replay, refuse, take over a dead claim, release, expire;
and the sealing of stored bodies."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.errors import Conflict, InvalidInput
from nlp_service.idempotency import service
from nlp_service.idempotency.deps import Idempotency, request_fingerprint
from nlp_service.idempotency.jobs import delete_expired_keys
from nlp_service.idempotency.sealing import SealError, seal, unseal
from nlp_service.idempotency.tables import IdempotencyRecord
from nlp_service.worker import JobContext

RID = "a" * 64


def claim(sessions: sessionmaker[Session], fingerprint: str = "f1", **kw: float):  # type: ignore[no-untyped-def]
    with session_scope(sessions) as s:
        return service.claim(
            db_session=s,
            record_id=RID,
            fingerprint=fingerprint,
            ttl_s=kw.get("ttl_s", 60),
            lock_s=kw.get("lock_s", 60),
        )


def complete(sessions: sessionmaker[Session], token: str, body: str = "sealed") -> None:
    with session_scope(sessions) as s:
        service.complete(db_session=s, record_id=RID, token=token, status_code=201, body=body)


def count(sessions: sessionmaker[Session]) -> int:
    with session_scope(sessions) as s:
        return s.execute(select(func.count()).select_from(IdempotencyRecord)).scalar_one()


def test_a_running_claim_refuses_retries_then_replays_once_complete(db_sessions) -> None:  # type: ignore[no-untyped-def]
    first = claim(db_sessions)
    assert isinstance(first, service.Claimed)
    with pytest.raises(Conflict) as info:
        claim(db_sessions)
    assert int(info.value.headers["Retry-After"]) >= 1
    complete(db_sessions, first.token, body="the response")
    assert claim(db_sessions) == service.Stored(201, "the response")
    with pytest.raises(InvalidInput):
        claim(db_sessions, fingerprint="another request")


def test_a_dead_claim_is_taken_over_and_its_late_completion_is_refused(db_sessions) -> None:  # type: ignore[no-untyped-def]
    dead = claim(db_sessions, lock_s=0.05)
    time.sleep(0.1)
    retry = claim(db_sessions, lock_s=60)
    assert isinstance(dead, service.Claimed) and isinstance(retry, service.Claimed)
    assert retry.token != dead.token
    with pytest.raises(Conflict):
        complete(db_sessions, dead.token)  # the work it belonged to rolls back with it
    complete(db_sessions, retry.token, body="second")
    assert claim(db_sessions) == service.Stored(201, "second")


def test_a_released_claim_runs_again_and_an_expired_key_is_new(db_sessions) -> None:  # type: ignore[no-untyped-def]
    first = claim(db_sessions)
    with session_scope(db_sessions) as s:
        service.release(db_session=s, record_id=RID, token=first.token)
    again = claim(db_sessions, ttl_s=0.05)
    assert isinstance(again, service.Claimed)
    complete(db_sessions, again.token)
    time.sleep(0.1)
    assert isinstance(claim(db_sessions, fingerprint="new request"), service.Claimed)  # expired: forgotten


def test_the_cleanup_job_deletes_expired_records_only(db_sessions) -> None:  # type: ignore[no-untyped-def]
    for i, ttl in enumerate([0.01, 0.01, 3600]):
        with session_scope(db_sessions) as s:
            service.claim(db_session=s, record_id=f"{i:064d}", fingerprint="f", ttl_s=ttl, lock_s=60)
    time.sleep(0.05)
    ctx = JobContext("idempotency-cleanup", Settings(), db_sessions, "test", asyncio.Event())
    delete_expired_keys(ctx)
    with session_scope(db_sessions) as s:
        assert s.execute(select(IdempotencyRecord.id)).scalars().all() == [f"{2:064d}"]


class Out(BaseModel):
    value: str


def test_a_failed_request_releases_its_claim(db_sessions) -> None:  # type: ignore[no-untyped-def]
    idem = Idempotency(
        key="k" * 16, client="ip:1.2.3.4", fingerprint="f", status_code=201, ttl_s=60, lock_s=60
    )

    def fails(_: Session) -> Out:
        raise InvalidInput("bad")

    with pytest.raises(InvalidInput):
        asyncio.run(idem.run(db_sessions, fails))
    assert count(db_sessions) == 0
    assert asyncio.run(idem.run(db_sessions, lambda _: Out(value="ok"))) == Out(value="ok")
    replay = asyncio.run(idem.run(db_sessions, lambda _: Out(value="not again")))
    assert replay.status_code == 201 and replay.body == b'{"value":"ok"}'  # type: ignore[union-attr]


def test_fingerprints_ignore_json_key_order_but_not_method_path_or_values() -> None:
    base = request_fingerprint("POST", "/v1/webhooks", b'{"a": 1, "b": [1, 2]}')
    assert base == request_fingerprint("POST", "/v1/webhooks", b'{"b":[1,2],"a":1}')
    assert base != request_fingerprint("POST", "/v1/keys", b'{"a": 1, "b": [1, 2]}')
    assert base != request_fingerprint("POST", "/v1/webhooks", b'{"a": 2, "b": [1, 2]}')
    assert base != request_fingerprint("PUT", "/v1/webhooks", b'{"a": 1, "b": [1, 2]}')


def test_sealed_bodies_round_trip_only_with_their_key() -> None:
    plaintext = b'{"key": "nlp_0123456789abcdef_supersecret"}' * 5
    sealed = seal(plaintext, b"client\0key-1234567890")
    assert b"supersecret" not in sealed.encode() and sealed != seal(plaintext, b"client\0key-1234567890")
    assert unseal(sealed, b"client\0key-1234567890") == plaintext
    assert unseal(seal(b"", b"k"), b"k") == b""
    with pytest.raises(SealError):
        unseal(sealed, b"client\0key-1234567891")
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(SealError):
        unseal(tampered, b"client\0key-1234567890")
    with pytest.raises(SealError):
        unseal("s1.@@@", b"k")
