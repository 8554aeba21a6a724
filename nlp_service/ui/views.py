"""``/ui``: the dashboard's pages and assets, the sign-in session, and the overview aggregate.

Every asset comes from the service: the pages and scripts under ``ui/static``, Plotly's bundle from the
installed ``plotly`` package (``/ui/vendor/plotly.min.js``). Pages are one HTML shell whose scripts read
``/ui/api/me`` (scopes: which actions to offer) and call the ``/v1`` API with the session cookie and the CSRF
header. With keys on, a visitor without a valid session gets the sign-in page and nothing else.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from nlp_service.auth.deps import Auth, require_scope
from nlp_service.auth.scopes import SCOPES
from nlp_service.auth.service import Principal
from nlp_service.auth.session import SESSION_COOKIE, end_session, session_token, start_session
from nlp_service.deps import JsonBody, SessionFactoryDep, SettingsDep, in_transaction
from nlp_service.errors import Unauthorized
from nlp_service.hardening.clients import client_address
from nlp_service.topics.provider import TaxonomyDep, TopicLabelsDep
from nlp_service.ui import service
from nlp_service.ui.schemas import MeOut, OverviewOut, OverviewQuery, SignInRequest

STATIC_DIR = Path(str(files("nlp_service.ui") / "static"))
PAGES = ("overview", "alerts", "impact", "search", "topics", "models")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
OPTIONAL_FEATURES = {"cases": "/v1/alerts/{alert_id}/assign", "incidents": "/v1/incidents"}

router = APIRouter(prefix="/ui", include_in_schema=False)


def plotly_bundle() -> Path:
    """``plotly.min.js`` as shipped in the installed ``plotly`` package's data."""
    return Path(str(files("plotly") / "package_data" / "plotly.min.js"))


def _auth(request: Request) -> Auth:
    auth: Auth = request.app.state.nlp.auth
    return auth


def _features(request: Request) -> dict[str, bool]:
    paths = set(request.app.openapi().get("paths", {}))  # app.routes holds included routers unflattened
    return {name: path in paths for name, path in OPTIONAL_FEATURES.items()}


def visitor(request: Request) -> Principal | None:
    """The page's visitor: a session's key, the anonymous caller of an open (keys off) local API, or None.

    Raises 403 for an anonymous caller open mode does not serve (not loopback, untrusted Host) and for a
    session cookie without its CSRF header on an API call (pages are plain navigations: no header needed).
    """
    auth = _auth(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token: str | None = header[7:].strip()
    elif request.url.path.startswith("/ui/api/"):
        token = session_token(request)
    else:
        token = request.cookies.get(SESSION_COOKIE)
    principal = auth.store.identify(token) if token else None
    if principal is not None:
        return principal
    if auth.store.keys_on():
        return None
    auth.open_access.check(request.client.host if request.client else None, request.headers.get("host"))
    return Principal(key_id=None, scopes=frozenset(SCOPES), anonymous=True)


def _page(name: str) -> Response:
    return FileResponse(STATIC_DIR / name, media_type="text/html", headers=PAGE_HEADERS)


@router.get("")
async def ui_root() -> Response:
    return RedirectResponse("/ui/overview", status_code=307)


@router.get("/vendor/plotly.min.js")
async def plotly_js() -> Response:
    return FileResponse(
        plotly_bundle(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/signin")
async def signin_page() -> Response:
    return _page("signin.html")


@router.get("/{page}")
async def page(page: str, request: Request) -> Response:
    """A dashboard page, or the sign-in page for a visitor without a session (keys on)."""
    if page not in PAGES:
        return HTMLResponse("<h1>Not found</h1>", status_code=404, headers=PAGE_HEADERS)
    who = await run_in_threadpool(visitor, request)
    return _page("index.html" if who is not None else "signin.html")


@router.post("/session", dependencies=[JsonBody])
async def sign_in(body: SignInRequest, request: Request) -> Response:
    """Exchange an API key for the session cookies (401 for an unknown or revoked key)."""
    auth = _auth(request)
    caller = client_address(request)
    auth.failures.check(caller, take=False)
    principal = await run_in_threadpool(auth.store.identify, body.key.strip())
    if principal is None:
        auth.failures.try_acquire(caller)
        raise Unauthorized("invalid or revoked API key")
    response = JSONResponse({"key_id": principal.key_id, "scopes": sorted(principal.scopes)})
    start_session(response, key=body.key.strip(), secure=request.url.scheme == "https")
    return response


@router.delete("/session", status_code=204)
async def sign_out() -> Response:
    """Clear the session cookies."""
    response = Response(status_code=204)
    end_session(response)
    return response


@router.get("/api/me", response_model=MeOut)
async def me(request: Request) -> MeOut:
    """The visitor's scopes (which actions the pages offer) and the optional API parts present."""
    who = await run_in_threadpool(visitor, request)
    keys_on = await run_in_threadpool(_auth(request).store.keys_on)
    if who is None:
        raise Unauthorized("sign in with an API key")
    return MeOut(
        keys_on=keys_on,
        signed_in=True,
        key_id=who.key_id,
        scopes=sorted(who.scopes),
        features=_features(request),
    )


@router.get("/api/overview", response_model=OverviewOut, dependencies=[require_scope("search")])
async def overview(
    request: Request,
    query: Annotated[OverviewQuery, Query()],
    taxonomy: TaxonomyDep,
    labels: TopicLabelsDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
) -> OverviewOut:
    """The overview page in one call: top topics' series with expected band, alerts, sentiment and NPS."""
    principal: Principal = request.state.principal
    scopes = set(SCOPES) if principal.anonymous else set(principal.scopes)
    return await in_transaction(
        sessions,
        lambda s: service.overview(
            db_session=s, settings=settings, taxonomy=taxonomy, labels=labels, query=query, scopes=scopes
        ),
    )


def install_ui(app: FastAPI) -> None:
    """Mount the dashboard: its routes and ``/ui/static``."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
