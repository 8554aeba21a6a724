"""Standard Webhooks signing and verification (https://www.standardwebhooks.com): pure functions, no I/O.

A message is signed as ``v1,`` + base64(HMAC-SHA256(key, f"{msg_id}.{timestamp}.{body}")), where ``key``
is the base64-decoded secret without its ``whsec_`` prefix. Several signatures (e.g. during a secret
rotation) are sent space-separated in one ``webhook-signature`` header; a receiver accepts any match.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
import time
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


class SignatureError(ValueError):
    """The message does not verify: missing headers, stale timestamp or no matching signature."""


def generate_secret(nbytes: int = 32) -> str:
    """A new signing secret: ``whsec_`` + base64 of ``nbytes`` (24-64) random bytes."""
    if not 24 <= nbytes <= 64:
        raise ValueError("a secret has 24 to 64 random bytes")
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(nbytes)).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_...`` secret (the prefix is optional)."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the secret is not valid base64") from exc
    if not key:
        raise ValueError("the secret is empty")
    return key


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """One signature ``v1,<base64>`` of the message."""
    to_sign = f"{msg_id}.{int(timestamp)}.".encode() + _as_bytes(body)
    digest = hmac.new(decode_secret(secret), to_sign, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    sigs = [sign(secret, msg_id, timestamp, body) for secret in secrets]
    if not sigs:
        raise ValueError("at least one secret is needed")
    return " ".join(sigs)


def sign_headers(
    secrets: Iterable[str], msg_id: str, body: bytes | str, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for a message sent now (or at ``timestamp``)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(ts),
        HEADER_SIGNATURE: signature_header(secrets, msg_id, ts, body),
    }


def verify(
    secret: str | Iterable[str],
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a received message; raise :class:`SignatureError` unless a ``v1`` signature matches.

    ``secret`` may be several secrets (a receiver in the middle of a rotation). The timestamp must be within
    ``tolerance_s`` of ``now`` (replay protection).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, ts_raw, sig_header = (lower.get(h) for h in (HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE))
    if not (msg_id and ts_raw and sig_header):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(ts_raw)
    except ValueError as exc:
        raise SignatureError("webhook-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError("webhook-timestamp is outside the tolerance")
    candidates = [secret] if isinstance(secret, str) else list(secret)
    expected = [sign(s, msg_id, timestamp, body).encode() for s in candidates]
    for received in sig_header.split():
        if not received.startswith(SIGNATURE_VERSION + ","):
            continue
        if any(hmac.compare_digest(received.encode(), exp) for exp in expected):
            return
    raise SignatureError("no matching signature")
