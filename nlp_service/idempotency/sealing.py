"""Seal a stored response with a key that only the client holds (its Idempotency-Key), standard library only.

Stored responses may carry a secret shown once (an API key, a webhook signing secret). The server keeps no
key to read them: each body is encrypted and authenticated with keys derived from the client's
Idempotency-Key, which is never stored (the row is found by a hash of it). Construction: HKDF-SHA256
(RFC 5869) over the Idempotency-Key with a random 16-byte salt per body gives an encryption key and a MAC key;
the encryption is HMAC-SHA256 in counter mode (a PRF used as a stream cipher, fresh keys for every body, so
no keystream is ever reused); HMAC-SHA256 over salt and ciphertext authenticates it (encrypt-then-MAC).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

VERSION = b"s1"
_SALT_BYTES = 16
_TAG_BYTES = 32


class SealError(ValueError):
    """The sealed text is malformed, was tampered with, or the key is wrong."""


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    prk = hmac.new(salt, secret, hashlib.sha256).digest()  # extract
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()  # expand, one block


def _keystream(key: bytes, length: int) -> bytes:
    blocks = (length + 31) // 32
    return b"".join(hmac.new(key, i.to_bytes(8, "big"), hashlib.sha256).digest() for i in range(blocks))


def _xor(data: bytes, stream: bytes) -> bytes:
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream[: len(data)], "big")
    return mixed.to_bytes(len(data), "big")


def _keys(secret: bytes, salt: bytes) -> tuple[bytes, bytes]:
    return _hkdf(secret, salt, b"nlp-idempotency enc"), _hkdf(secret, salt, b"nlp-idempotency mac")


def seal(plaintext: bytes, secret: bytes) -> str:
    """``plaintext`` encrypted and authenticated under ``secret``, as ASCII text."""
    salt = os.urandom(_SALT_BYTES)
    enc_key, mac_key = _keys(secret, salt)
    ciphertext = _xor(plaintext, _keystream(enc_key, len(plaintext)))
    tag = hmac.new(mac_key, VERSION + salt + ciphertext, hashlib.sha256).digest()
    return (VERSION + b"." + base64.urlsafe_b64encode(salt + ciphertext + tag)).decode("ascii")


def unseal(sealed: str, secret: bytes) -> bytes:
    """The plaintext of :func:`seal`; :class:`SealError` if it was altered or ``secret`` is not its key."""
    version, _, payload = sealed.encode("ascii").partition(b".")
    if version != VERSION:
        raise SealError("unknown sealing version")
    try:
        raw = base64.urlsafe_b64decode(payload)
    except ValueError as exc:
        raise SealError("malformed sealed text") from exc
    if len(raw) < _SALT_BYTES + _TAG_BYTES:
        raise SealError("malformed sealed text")
    salt, ciphertext, tag = raw[:_SALT_BYTES], raw[_SALT_BYTES:-_TAG_BYTES], raw[-_TAG_BYTES:]
    enc_key, mac_key = _keys(secret, salt)
    expected = hmac.new(mac_key, VERSION + salt + ciphertext, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        raise SealError("sealed text was altered or the key is wrong")
    return _xor(ciphertext, _keystream(enc_key, len(ciphertext)))
