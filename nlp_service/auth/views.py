"""``/v1/keys``: create (the key is shown once), list and revoke API keys. Mounted with scope ``admin``."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from nlp_service.auth import service
from nlp_service.auth.schemas import KeyCreateRequest, KeyCreateResponse, KeyListResponse, KeyPublic
from nlp_service.auth.tables import ApiKey
from nlp_service.db import session_scope
from nlp_service.deps import JsonBody
from nlp_service.errors import ErrorResponse
from nlp_service.idempotency.deps import IdempotencyDep

router = APIRouter(prefix="/keys", tags=["keys"])

KeyId = Path(min_length=1, max_length=64, description="The key's id (the 16 hex characters after 'nlp_')")


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
async def list_keys(request: Request) -> KeyListResponse:
    """Every key, revoked ones included, without secrets."""
    sessions = request.app.state.nlp.auth.store.sessions

    def run() -> KeyListResponse:
        with session_scope(sessions) as session:
            return KeyListResponse(keys=[_public(row) for row in service.get_all(db_session=session)])

    return await run_in_threadpool(run)


@router.post("", response_model=KeyCreateResponse, status_code=201, dependencies=[JsonBody])
async def create_key(
    body: KeyCreateRequest, request: Request, idempotency: IdempotencyDep
) -> KeyCreateResponse:
    """A new key. The response holds the full key: it is not stored and cannot be shown again (except to a
    retry with the same ``Idempotency-Key``, from a copy sealed with that key)."""
    sessions = request.app.state.nlp.auth.store.sessions

    def run(session: Session) -> KeyCreateResponse:
        row, key = service.create(db_session=session, name=body.name, scopes=list(body.scopes))
        return KeyCreateResponse(**_public(row).model_dump(), key=key)

    return await idempotency.run(sessions, run)  # type: ignore[return-value]


@router.delete("/{key_id}", response_model=KeyPublic, responses={404: {"model": ErrorResponse}})
async def revoke_key(request: Request, key_id: str = KeyId) -> KeyPublic:
    """Revoke a key: it stops working at once, in every process. Revoking twice is harmless."""
    sessions = request.app.state.nlp.auth.store.sessions

    def run() -> KeyPublic:
        with session_scope(sessions) as session:
            return _public(service.revoke(db_session=session, key_id=key_id))

    return await run_in_threadpool(run)
