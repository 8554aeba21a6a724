"""Key lifecycle (create, list, revoke) and verification.

A key reads ``nlp_<id>_<secret>``: ``id`` is 16 hex characters (the row's primary key, safe to log),
``secret`` 43 URL-safe characters (256 random bits). The table stores a per-key salt and
HMAC-SHA256(salt, secret); verification recomputes it and compares in constant time. Since the secret
is high-entropy, a fast keyed hash is enough (no password-style KDF is needed).

Verification reads the database on every request: there is no cache, so a revoked key stops working
at once in every process. Likewise "keys are off" is re-read on every anonymous request until a key is seen,
so the first key (created by the CLI, another process) turns keys on at once in every replica.

A key manages only keys within its own scopes (:func:`check_within`): ``admin`` is not a root scope.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.auth.scopes import Scope, parse_scopes
from nlp_service.auth.tables import ApiKey
from nlp_service.errors import Forbidden, NotFound, NotReady, Unauthorized

KEY_PREFIX = "nlp_"
KEY_RE = re.compile(r"^nlp_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{20,100})$")
_DUMMY_SALT = "0" * 32


def _hash(salt_hex: str, secret: str) -> str:
    return hmac.new(bytes.fromhex(salt_hex), secret.encode(), hashlib.sha256).hexdigest()


def create(
    *, db_session: Session, name: str, scopes: list[str], key: str | None = None
) -> tuple[ApiKey, str]:
    """A new key row and the full key (returned once; only its hash is stored). ``key``: store this key
    (``nlp_<16 hex>_<secret>``, e.g. one an operator generated for bootstrapping) instead of a random one."""
    key_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_hex(16)
    if key is not None:
        m = KEY_RE.match(key)
        if m is None or len(m["secret"]) < 32:
            raise ValueError("a key reads nlp_<16 hex characters>_<32-100 URL-safe characters>")
        key_id, secret = m["id"], m["secret"]
    row = ApiKey(
        id=key_id,
        name=name.strip(),
        scopes=",".join(parse_scopes(scopes)),
        salt=salt,
        secret_hash=_hash(salt, secret),
        created_at=datetime.now(UTC),
    )
    db_session.add(row)
    db_session.flush()
    return row, f"{KEY_PREFIX}{key_id}_{secret}"


def check_within(*, held: Iterable[str], scopes: Iterable[str], action: str) -> None:
    """Raise :class:`Forbidden` unless the acting key holds every one of ``scopes`` (no escalation)."""
    missing = sorted(set(scopes) - set(held))
    if missing:
        message = f"the acting key cannot {action} a key with scope(s) it lacks: {', '.join(missing)}"
        raise Forbidden(message, detail=[{"field": "scopes", "message": message, "type": "scope"}])


def get_all(*, db_session: Session) -> list[ApiKey]:
    return list(db_session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def get(*, db_session: Session, key_id: str) -> ApiKey:
    row = db_session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key {key_id!r}")
    return row


def revoke(*, db_session: Session, key_id: str) -> ApiKey:
    """Mark a key revoked (idempotent); the row stays so the key id is never reused."""
    row = get(db_session=db_session, key_id=key_id)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        db_session.flush()
    return row


def any_exist(*, db_session: Session) -> bool:
    """True once any key was ever created (revoked ones count: revoking every key does not open the API)."""
    return db_session.scalar(select(ApiKey.id).limit(1)) is not None


def verify(*, db_session: Session, token: str) -> ApiKey | None:
    """The active key row for ``token``, or None (unknown, malformed, wrong secret or revoked)."""
    match = KEY_RE.match(token)
    if match is None:
        return None
    row = db_session.get(ApiKey, match["id"])
    expected = row.secret_hash if row is not None else "0" * 64
    actual = _hash(row.salt if row is not None else _DUMMY_SALT, match["secret"])
    if not hmac.compare_digest(expected, actual) or row is None or row.revoked_at is not None:
        return None
    return row


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key, or an anonymous client when keys are off."""

    key_id: str | None
    scopes: frozenset[str]
    anonymous: bool = False


ANONYMOUS = Principal(key_id=None, scopes=frozenset(), anonymous=True)


class KeyStore:
    """Answers "are keys on?" and "may this token use this scope?" against the database (no cache)."""

    def __init__(self, sessions: sessionmaker[Session], *, require: bool = False) -> None:
        self.sessions = sessions
        self.require = require
        self._seen_keys = False  # keys are never deleted, so once seen they stay "on"

    @property
    def engine(self) -> Engine:
        bind = self.sessions.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    def _table_missing(self) -> bool:
        return not inspect(self.engine).has_table(ApiKey.__tablename__)

    def keys_on(self) -> bool:
        """Keys are required when ``NLP_REQUIRE_API_KEYS`` is set or any key exists.

        Until a key is seen this reads the database each time (one primary-key lookup), so a key created by
        another process or replica ends open mode at its next request.
        """
        if self.require or self._seen_keys:
            return True
        try:
            with self.sessions() as session:
                self._seen_keys = any_exist(db_session=session)
        except (OperationalError, ProgrammingError) as exc:
            if self._table_missing():  # not migrated yet: there can be no keys
                return False
            raise NotReady("API key store is unavailable") from exc
        return self._seen_keys

    def identify(self, token: str) -> Principal | None:
        """The principal of an active key, or None (unknown, malformed or revoked)."""
        try:
            with self.sessions() as session:
                row = verify(db_session=session, token=token)
        except (OperationalError, ProgrammingError) as exc:
            if not self._table_missing():
                raise NotReady("API key store is unavailable") from exc
            return None
        if row is None:
            return None
        self._seen_keys = True
        return Principal(key_id=row.id, scopes=frozenset(row.scope_list))

    def authenticate(self, token: str | None, scope: Scope) -> Principal:
        """The caller's principal, or 401 (missing/unknown/revoked key) or 403 (key lacks ``scope``)."""
        principal = self.identify(token) if token else None
        if principal is not None:
            if scope not in principal.scopes:
                raise Forbidden(
                    f"this API key lacks the {scope!r} scope",
                    detail=[{"field": "scope", "message": f"requires {scope}", "type": "scope"}],
                )
            return principal
        if not self.keys_on():
            return ANONYMOUS
        message = "invalid or revoked API key" if token else "missing API key (Authorization: Bearer <key>)"
        raise Unauthorized(message, headers={"WWW-Authenticate": "Bearer"})
