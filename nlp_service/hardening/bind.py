"""Who may reach a server whose API keys are off ("open mode").

Two layers: ``nlp-service serve`` refuses to bind a non-loopback address (:func:`check_bind`, a clear
start-up error), and the app itself, however it is served (plain uvicorn, gunicorn, a test client), answers
an anonymous ``/v1`` request only from a loopback client that addresses a trusted host name
(:class:`OpenAccess`, checked by ``require_scope``): DNS rebinding and a public bind both end in 403.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from nlp_service.config import Settings
from nlp_service.errors import Forbidden

log = logging.getLogger(__name__)

CREATE_KEY_HINT = "`nlp-service keys create --name NAME --scopes all` on the server"


class UnsafeBind(RuntimeError):
    """Binding ``host`` would expose an unauthenticated API."""


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` (also IPv4-mapped) and ``localhost``; not ``0.0.0.0``, ``::`` or names."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def host_name(header: str) -> str:
    """A ``Host`` header without its port, lower case: ``[::1]:8000`` -> ``::1``, ``A.b:80`` -> ``a.b``."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def check_bind(settings: Settings, host: str, *, keys_on: bool) -> None:
    """Raise :class:`UnsafeBind` for a non-loopback ``host`` with keys off, unless explicitly allowed."""
    if keys_on or is_loopback(host):
        return
    if settings.allow_unauthenticated:
        log.warning("serving %s WITHOUT API keys (NLP_ALLOW_UNAUTHENTICATED=true): anyone can call it", host)
        return
    raise UnsafeBind(
        f"refusing to serve {host} without API keys: create one ({CREATE_KEY_HINT}), "
        "set NLP_REQUIRE_API_KEYS=true, bind 127.0.0.1, "
        "or set NLP_ALLOW_UNAUTHENTICATED=true to accept the risk"
    )


@dataclass(frozen=True)
class OpenAccess:
    """The requests an app serves while keys are off: from a loopback client (unless
    ``NLP_ALLOW_UNAUTHENTICATED``), addressed to localhost, a loopback address or ``NLP_TRUSTED_HOSTS``."""

    trusted_hosts: frozenset[str]
    allow_unauthenticated: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAccess:
        return cls(frozenset(host_name(h) for h in settings.trusted_hosts), settings.allow_unauthenticated)

    def check(self, client_host: str | None, host_header: str | None) -> None:
        """Raise :class:`Forbidden` (403) for a request an open server must not answer."""
        if not self.allow_unauthenticated and not (client_host and is_loopback(client_host)):
            raise Forbidden(
                f"API keys are off, so this server answers loopback clients only (not {client_host}): "
                f"create a key ({CREATE_KEY_HINT}) or set NLP_ALLOW_UNAUTHENTICATED=true to accept the risk"
            )
        name = host_name(host_header or "")
        if "*" in self.trusted_hosts or is_loopback(name) or name in self.trusted_hosts:
            return
        raise Forbidden(
            f"API keys are off, so this server answers requests addressed to localhost only, not Host "
            f"{name!r} (a DNS-rebinding guard): add it to NLP_TRUSTED_HOSTS or create a key "
            f"({CREATE_KEY_HINT})"
        )


def warn_if_open(*, keys_on: bool) -> None:
    """The start-up warning of the embedded default (no keys: every endpoint is open)."""
    if not keys_on:
        log.warning(
            "API keys are off: /v1 answers loopback clients addressing localhost (or NLP_TRUSTED_HOSTS) "
            "without a key; create the first key with %s to turn keys on",
            CREATE_KEY_HINT,
        )
