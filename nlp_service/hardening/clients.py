"""Who is calling: the identity that per-client limits (queue shares, idempotency keys) are keyed by."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request


def client_address(request: Request) -> str:
    """``ip:<client address>``: who is calling before (or without) authentication."""
    return f"ip:{request.client.host if request.client else 'unknown'}"


def client_id(request: Request) -> str:
    """``key:<id>`` for a request authenticated with an API key, else ``ip:<client address>``.

    Read after ``require_scope`` has run (it sets ``request.state.key_id``); router-level dependencies
    run before a route's own, so a route parameter of type :data:`ClientId` sees it.
    """
    key_id = getattr(request.state, "key_id", None)
    if key_id:
        return f"key:{key_id}"
    return client_address(request)


async def get_client_id(request: Request) -> str:
    return client_id(request)


ClientId = Annotated[str, Depends(get_client_id)]
