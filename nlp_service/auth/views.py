"""``/v1/keys``: create (the key is shown once), list and revoke API keys. Mounted with scope ``admin``.

Only a key may manage keys (the first one comes from ``nlp-service keys create``), and only keys within its
own scopes. Every operation, refusals included, is audit-logged with the acting key's id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from nlp_service.auth import audit, service
from nlp_service.auth.deps import CurrentPrincipal
from nlp_service.auth.schemas import KeyCreateRequest, KeyCreateResponse, KeyListResponse, KeyPublic
from nlp_service.auth.service import Principal
from nlp_service.auth.tables import ApiKey
from nlp_service.db import session_scope
from nlp_service.deps import JsonBody
from nlp_service.errors import ErrorResponse, Forbidden
from nlp_service.hardening.bind import CREATE_KEY_HINT
from nlp_service.idempotency.deps import IdempotencyDep

router = APIRouter(prefix="/keys", tags=["keys"])

KeyId = Path(min_length=1, max_length=64, description="The key's id (the 16 hex characters after 'nlp_')")


def key_holder(principal: CurrentPrincipal) -> Principal:
    """The acting key; 403 for an anonymous caller (keys off: the first key comes from the CLI)."""
    if principal.anonymous:
        raise Forbidden(
            f"no API key exists yet and keys cannot be managed anonymously: create the first key with "
            f"{CREATE_KEY_HINT}, then call with it"
        )
    return principal


Actor = Annotated[Principal, Depends(key_holder)]


def _utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _public(row: ApiKey) -> KeyPublic:
    created_at = _utc(row.created_at)
    assert created_at is not None
    return KeyPublic(
        id=row.id,
        name=row.name,
        scopes=row.scope_list,
        created_at=created_at,
        revoked_at=_utc(row.revoked_at),
    )


@router.get("", response_model=KeyListResponse)
async def list_keys(request: Request, actor: Actor) -> KeyListResponse:
    """Every key, revoked ones included, without secrets."""
    sessions = request.app.state.nlp.auth.store.sessions

    def run() -> KeyListResponse:
        with session_scope(sessions) as session:
            return KeyListResponse(keys=[_public(row) for row in service.get_all(db_session=session)])

    listed = await run_in_threadpool(run)
    audit.key_event("key.listed", actor_key_id=actor.key_id, via="http")
    return listed


@router.post("", response_model=KeyCreateResponse, status_code=201, dependencies=[JsonBody])
async def create_key(
    body: KeyCreateRequest, request: Request, actor: Actor, idempotency: IdempotencyDep
) -> KeyCreateResponse | JSONResponse:
    """A new key with scopes the acting key holds (403 otherwise). The response holds the full key: it is
    not stored and cannot be shown again (except to a retry with the same ``Idempotency-Key``, from a copy
    sealed with that key)."""
    sessions = request.app.state.nlp.auth.store.sessions
    try:
        service.check_within(held=actor.scopes, scopes=body.scopes, action="create")
    except Forbidden as exc:
        audit.key_event(
            "key.create_refused",
            actor_key_id=actor.key_id,
            via="http",
            scopes=body.scopes,
            reason=exc.message,
        )
        raise

    created: list[ApiKey] = []

    def run(session: Session) -> KeyCreateResponse:
        row, key = service.create(db_session=session, name=body.name, scopes=list(body.scopes))
        created.append(row)
        return KeyCreateResponse(**_public(row).model_dump(), key=key)

    response = await idempotency.run(sessions, run)
    for row in created:  # none when a retry replayed the stored response
        audit.key_event("key.created", actor_key_id=actor.key_id, via="http", key=row)
    return response


@router.delete("/{key_id}", response_model=KeyPublic, responses={404: {"model": ErrorResponse}})
async def revoke_key(request: Request, actor: Actor, key_id: str = KeyId) -> KeyPublic:
    """Revoke a key whose scopes the acting key holds (403 otherwise): it stops working at once, in every
    process. Revoking twice is harmless."""
    sessions = request.app.state.nlp.auth.store.sessions

    def run() -> ApiKey:
        with session_scope(sessions) as session:
            row = service.get(db_session=session, key_id=key_id)
            try:
                service.check_within(held=actor.scopes, scopes=row.scope_list, action="revoke")
            except Forbidden as exc:
                audit.key_event(
                    "key.revoke_refused", actor_key_id=actor.key_id, via="http", key=row, reason=exc.message
                )
                raise
            return service.revoke(db_session=session, key_id=key_id)

    row = await run_in_threadpool(run)
    audit.key_event("key.revoked", actor_key_id=actor.key_id, via="http", key=row)
    return _public(row)
