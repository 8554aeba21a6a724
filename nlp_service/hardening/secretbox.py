"""Encryption of stored secrets (webhook signing secrets) with Fernet keys from the environment.

``NLP_SECRET_KEYS`` holds one or more Fernet keys, comma-separated: the first encrypts, every one decrypts
(add a new key in front to rotate; the ``webhook-maintenance`` job re-seals rows under it). Without it, a key
file is generated once under ``var_dir`` (``secret.key``, mode 0600) and reused: right for the embedded
single-host setup; several hosts (replicas, separate workers) must share ``NLP_SECRET_KEYS``.

Sealed values are ``enc1:`` + a Fernet token (AES-128-CBC + HMAC-SHA256, authenticated). Values without the
prefix are legacy plaintext rows written before encryption: read as they are, and re-sealed by the job.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from nlp_service.config import Settings
from nlp_service.db import is_sqlite
from nlp_service.hardening.files import private_dir, private_file

log = logging.getLogger(__name__)

PREFIX = "enc1:"
KEY_FILE_NAME = "secret.key"


class SecretBoxError(RuntimeError):
    """A key is malformed, or a stored value cannot be decrypted with the configured keys."""


class SecretBox:
    """Seals and opens short secrets; the first key seals, all keys open."""

    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise SecretBoxError("at least one key is needed")
        try:
            self._fernets = [Fernet(key) for key in keys]
        except (ValueError, TypeError) as exc:
            raise SecretBoxError(
                "a key in NLP_SECRET_KEYS is not a Fernet key (32 url-safe base64 bytes; make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            ) from exc
        self._all = MultiFernet(self._fernets)

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def seal(self, plaintext: str) -> str:
        return PREFIX + self._fernets[0].encrypt(plaintext.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """The plaintext of a sealed value; a legacy plaintext value is returned as it is."""
        if not self.is_sealed(stored):
            return stored
        try:
            return self._all.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise SecretBoxError("a stored secret cannot be decrypted with the configured keys") from exc

    def needs_reseal(self, stored: str) -> bool:
        """Plaintext, or sealed under a key other than the first one."""
        if not self.is_sealed(stored):
            return True
        try:
            self._fernets[0].decrypt(stored[len(PREFIX) :].encode("ascii"))
        except InvalidToken:
            return True
        return False


def _read_or_create_key_file(path: Path) -> bytes:
    """The key in ``path``, generated there first if missing (0600, atomic even with concurrent starts)."""
    if not path.exists():
        private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        private_file(tmp, Fernet.generate_key() + b"\n")
        try:
            os.link(tmp, path)  # fails if another process created it first: theirs wins
            log.warning("no NLP_SECRET_KEYS: generated a key for stored secrets in %s (keep it safe)", path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        log.warning("the key file %s is readable by other users: chmod 600 it", path)
    return path.read_bytes().strip()


def load_secret_box(settings: Settings) -> SecretBox:
    """The box for ``settings``: keys from ``NLP_SECRET_KEYS``, else the key file under ``var_dir``."""
    if settings.secret_keys is not None:
        keys = [k.strip() for k in settings.secret_keys.get_secret_value().split(",") if k.strip()]
        return SecretBox(keys)
    if not is_sqlite(settings.resolved_database_url()):
        log.warning(
            "NLP_SECRET_KEYS is not set: with a shared database every replica and worker needs the same key"
        )
    return SecretBox([_read_or_create_key_file(settings.var_dir / KEY_FILE_NAME)])
