"""The dashboard's session: an API key held in an HttpOnly, SameSite=Strict cookie, plus a CSRF token.

Signing in (``POST /ui/session``) checks the key and sets two cookies: ``nlp_session`` (the key itself:
HttpOnly, so page scripts cannot read it; SameSite=Strict, so other sites' requests do not carry it) and
``nlp_csrf`` (a random token the page reads and echoes in the ``X-CSRF-Token`` header). ``require_scope``
accepts the session cookie only with that header equal to the cookie (double submit), on every method: a
request another site makes cannot set it. Keys are verified against the database on each request, as with
the header, so revoking the key ends the session at once; the session is scoped exactly like its key.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from nlp_service.errors import Forbidden

SESSION_COOKIE = "nlp_session"
CSRF_COOKIE = "nlp_csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE_S = 12 * 3600


def session_token(request: Request) -> str | None:
    """The API key of the request's session cookie, or None without one; 403 without a matching CSRF token."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    sent = request.headers.get(CSRF_HEADER, "")
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        message = f"a session cookie needs the {CSRF_HEADER} header equal to the {CSRF_COOKIE} cookie"
        raise Forbidden(message, detail=[{"field": CSRF_HEADER, "message": message, "type": "csrf"}])
    return token


def start_session(response: Response, *, key: str, secure: bool) -> None:
    """Set the session and CSRF cookies on ``response``."""
    common = {"max_age": SESSION_MAX_AGE_S, "path": "/", "secure": secure, "samesite": "strict"}
    response.set_cookie(SESSION_COOKIE, key, httponly=True, **common)  # type: ignore[arg-type]
    response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(24), httponly=False, **common)  # type: ignore[arg-type]


def end_session(response: Response) -> None:
    """Clear both cookies."""
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict")
