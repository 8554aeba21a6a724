"""``IdempotencyDep``: how a creating POST view runs its transaction so that a retry with the same
``Idempotency-Key`` header gets the first response back instead of doing the work again.

    async def create_thing(body: ..., sessions: SessionFactoryDep, idempotency: IdempotencyDep) -> ThingOut:
        return await idempotency.run(sessions, lambda s: service.create(db_session=s, ...))

Without the header, ``run`` is :func:`nlp_service.deps.in_transaction`. With it, the key is scoped to the
client (API key id, or address with keys off) and bound to the request (method, path and body): the same
request again gets the stored status and body (header ``Idempotent-Replayed: true``), another request with the
key gets 422, and a retry while the first still runs gets 409. Everything runs on one worker thread, so a
request that timed out (503) still finishes and stores its response: its retry finds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from nlp_service.db import session_scope
from nlp_service.deps import in_transaction
from nlp_service.hardening.clients import ClientId
from nlp_service.idempotency import service
from nlp_service.idempotency.sealing import seal, unseal

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

KeyHeader = Header(
    alias=HEADER,
    min_length=16,
    max_length=255,
    pattern=r"^[\x21-\x7e]+$",
    description="A unique key for this request (e.g. a UUID, 16-255 visible ASCII characters): a retry with "
    "the same key and body returns the first response instead of creating again; kept for "
    "NLP_IDEMPOTENCY_TTL_S",
)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the method, path and body (JSON bodies canonicalised: key order and spacing ignored)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(b"\0".join([method.upper().encode(), path.encode(), canonical])).hexdigest()


@dataclass(frozen=True)
class Idempotency:
    """One request's idempotency context (``key`` None: the header was not sent)."""

    key: str | None
    client: str
    fingerprint: str
    status_code: int
    ttl_s: float
    lock_s: float

    @property
    def record_id(self) -> str:
        return hashlib.sha256(f"{self.client}\0{self.key}".encode()).hexdigest()

    @property
    def _sealing_key(self) -> bytes:
        return f"{self.client}\0{self.key}".encode()

    async def run(self, factory: sessionmaker[Session], work: Callable[[Session], M]) -> M | JSONResponse:
        """``work(session)`` in one transaction, or the stored response of an earlier identical request."""
        if self.key is None:
            return await in_transaction(factory, work)
        return await run_in_threadpool(self._run, factory, work)

    def _run(self, factory: sessionmaker[Session], work: Callable[[Session], M]) -> M | JSONResponse:
        with session_scope(factory) as db_session:
            outcome = service.claim(
                db_session=db_session,
                record_id=self.record_id,
                fingerprint=self.fingerprint,
                ttl_s=self.ttl_s,
                lock_s=self.lock_s,
            )
        if isinstance(outcome, service.Stored):
            content = json.loads(unseal(outcome.body, self._sealing_key))
            return JSONResponse(content, status_code=outcome.status_code, headers={REPLAYED_HEADER: "true"})
        try:
            with session_scope(factory) as db_session:
                result = work(db_session)
                body = json.dumps(result.model_dump(mode="json", by_alias=True)).encode()
                service.complete(
                    db_session=db_session,
                    record_id=self.record_id,
                    token=outcome.token,
                    status_code=self.status_code,
                    body=seal(body, self._sealing_key),
                )
            return result
        except BaseException:
            try:
                with session_scope(factory) as db_session:
                    service.release(db_session=db_session, record_id=self.record_id, token=outcome.token)
            except Exception:  # the claim then expires with its lock; the request's own error wins
                log.exception("could not release an idempotency claim")
            raise


async def get_idempotency(
    request: Request, client: ClientId, key: Annotated[str | None, KeyHeader] = None
) -> Idempotency:
    settings = request.app.state.nlp.settings
    route = request.scope.get("route")
    body = await request.body() if key else b""
    return Idempotency(
        key=key,
        client=client,
        fingerprint=request_fingerprint(request.method, request.url.path, body),
        status_code=getattr(route, "status_code", None) or 200,
        ttl_s=settings.idempotency_ttl_s,
        lock_s=settings.idempotency_lock_s,
    )


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
