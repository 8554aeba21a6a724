"""Seal a stored response with a key that only the client holds (its Idempotency-Key).

Stored responses may carry a secret shown once (an API key, a webhook signing secret). The server keeps no
key to read them: each body is encrypted and authenticated with AES-256-GCM (``cryptography``) under a key
derived by HKDF-SHA256 from the client's Idempotency-Key and a random 16-byte salt per body. The
Idempotency-Key itself is never stored (the row is found by a hash of it).
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"s2"
_SALT_BYTES = 16
_NONCE_BYTES = 12
_TAG_BYTES = 16


class SealError(ValueError):
    """The sealed text is malformed, was tampered with, or the key is wrong."""


def _cipher(secret: bytes, salt: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"nlp-idempotency").derive(secret)
    return AESGCM(key)


def seal(plaintext: bytes, secret: bytes) -> str:
    """``plaintext`` encrypted and authenticated under ``secret``, as ASCII text."""
    salt, nonce = os.urandom(_SALT_BYTES), os.urandom(_NONCE_BYTES)
    ciphertext = _cipher(secret, salt).encrypt(nonce, plaintext, VERSION)
    return (VERSION + b"." + base64.urlsafe_b64encode(salt + nonce + ciphertext)).decode("ascii")


def unseal(sealed: str, secret: bytes) -> bytes:
    """The plaintext of :func:`seal`; :class:`SealError` if it was altered or ``secret`` is not its key."""
    version, _, payload = sealed.encode("ascii").partition(b".")
    if version != VERSION:
        raise SealError("unknown sealing version")
    try:
        raw = base64.urlsafe_b64decode(payload)
    except ValueError as exc:
        raise SealError("malformed sealed text") from exc
    if len(raw) < _SALT_BYTES + _NONCE_BYTES + _TAG_BYTES:
        raise SealError("malformed sealed text")
    salt, nonce, ciphertext = (
        raw[:_SALT_BYTES],
        raw[_SALT_BYTES : _SALT_BYTES + _NONCE_BYTES],
        raw[_SALT_BYTES + _NONCE_BYTES :],
    )
    try:
        return _cipher(secret, salt).decrypt(nonce, ciphertext, VERSION)
    except InvalidTag as exc:
        raise SealError("sealed text was altered or the key is wrong") from exc
