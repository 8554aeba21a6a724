"""``require_scope``: the dependency every ``/v1`` router is mounted with (see ``nlp_service.api``).

It authenticates the ``Authorization: Bearer <key>`` header, or else the dashboard's session cookie with its
CSRF header (``nlp_service.auth.session``; 403 without the header) (401), checks the route's scope (403),
then takes a token from the caller's rate-limit bucket (429). A client address whose bad keys used up its
failure budget gets 429 before any key lookup. With keys off, callers are anonymous, served only from a
loopback client addressing a trusted host (``OpenAccess``, 403 otherwise) and bucketed by client address.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nlp_service.auth.scopes import SCOPES, Scope
from nlp_service.auth.service import KeyStore, Principal
from nlp_service.auth.session import session_token
from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker
from nlp_service.errors import NotReady, Unauthorized
from nlp_service.hardening.bind import OpenAccess, warn_if_open
from nlp_service.hardening.clients import client_address, client_id
from nlp_service.hardening.ratelimit import RateLimiter

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer nlp_...`")


@dataclass
class Auth:
    """Per-app access control: the key store, the rate limiters and the keys-off access rule."""

    store: KeyStore
    limiter: RateLimiter
    failures: RateLimiter  # failed authentications per client address
    open_access: OpenAccess

    @classmethod
    def from_settings(cls, settings: Settings) -> Auth:
        engine = make_engine(
            settings.resolved_database_url(), pool_size=4, sqlite_synchronous=settings.sqlite_synchronous
        )
        return cls(
            store=KeyStore(make_sessionmaker(engine), require=settings.require_api_keys),
            limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
            failures=RateLimiter(
                settings.auth_failure_per_s, settings.auth_failure_burst, what="failed authentications"
            ),
            open_access=OpenAccess.from_settings(settings),
        )

    def report_at_startup(self) -> None:
        """Log whether keys are on (a warning when every endpoint is open)."""
        try:
            warn_if_open(keys_on=self.store.keys_on())
        except NotReady:
            log.error("API key store is unavailable: /v1 endpoints answer 503 until it is")

    def close(self) -> None:
        self.store.engine.dispose()


class ScopeRequirement:
    """Which scope a request needs: ``read`` for GET/HEAD, ``write`` (default: ``read``) for other
    methods, or ``by_endpoint[name]`` for the listed endpoint functions of the router.
    """

    def __init__(
        self, read: Scope, write: Scope | None = None, by_endpoint: Mapping[str, Scope] | None = None
    ) -> None:
        for scope in (read, write, *(by_endpoint or {}).values()):
            if scope is not None and scope not in SCOPES:
                raise ValueError(f"unknown scope {scope!r}")
        self.read = read
        self.write = write or read
        self.by_endpoint = dict(by_endpoint or {})

    def scope_for(self, method: str, endpoint_name: str | None) -> Scope:
        if endpoint_name in self.by_endpoint:
            return self.by_endpoint[endpoint_name]
        return self.read if method.upper() in READ_METHODS else self.write

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        auth: Auth = request.app.state.nlp.auth
        scope = self.scope_for(request.method, getattr(request.scope.get("route"), "name", None))
        token = credentials.credentials if credentials is not None else session_token(request)
        client = request.client.host if request.client else None
        caller = client_address(request)
        if token:
            auth.failures.check(caller, take=False)  # budget spent: 429 without a key lookup or HMAC
        try:
            principal = await run_in_threadpool(auth.store.authenticate, token, scope)
        except Unauthorized:
            if token:
                auth.failures.try_acquire(caller)
            raise
        if principal.anonymous:
            auth.open_access.check(client, request.headers.get("host"))
        request.state.principal = principal
        request.state.key_id = principal.key_id
        auth.limiter.check(client_id(request))
        return principal

    def __repr__(self) -> str:
        return f"require_scope({self.read!r}, write={self.write!r}, by_endpoint={self.by_endpoint!r})"


def require_scope(
    read: Scope, *, write: Scope | None = None, by_endpoint: Mapping[str, Scope] | None = None
) -> Any:
    """The dependency that guards a router: ``dependencies=[require_scope("classify")]``.

    ``write``: the scope of non-read methods (default ``read``); ``by_endpoint``: endpoint function name ->
    scope, for the few routes of a router that need another one.
    """
    return Depends(ScopeRequirement(read, write, by_endpoint))


def current_principal(request: Request) -> Principal:
    """The caller, as authenticated by the router's ``require_scope`` (which runs before the endpoint)."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise RuntimeError("require_scope did not run for this route")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


@dataclass(frozen=True)
class RouteScope:
    """One method of one route and the scope it needs (None: no ``require_scope``)."""

    method: str
    path: str
    name: str
    scope: Scope | None


def route_scopes(app: FastAPI) -> list[RouteScope]:
    """Every API route's methods with their required scope, as included (for checks and tests)."""
    try:  # FastAPI >= 0.16x includes routers lazily; this yields the effective routes
        from fastapi.routing import iter_route_contexts

        routes: Iterable[Any] = iter_route_contexts(app.routes)
    except ImportError:  # pragma: no cover - older FastAPI copies routes on include
        routes = app.routes
    out = []
    for route in routes:
        if not isinstance(getattr(route, "original_route", route), APIRoute):
            continue
        requirement = next(
            (
                dep.dependency
                for dep in getattr(route, "dependencies", None) or []
                if isinstance(getattr(dep, "dependency", None), ScopeRequirement)
            ),
            None,
        )
        for method in sorted(route.methods):
            scope = requirement.scope_for(method, route.name) if requirement else None
            out.append(RouteScope(method, route.path, route.name, scope))
    return out
