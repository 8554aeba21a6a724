"""Start-up checks: refuse to serve a non-loopback address without API keys, warn when keys are off."""

from __future__ import annotations

import ipaddress
import logging

from nlp_service.config import Settings

log = logging.getLogger(__name__)


class UnsafeBind(RuntimeError):
    """Binding ``host`` would expose an unauthenticated API."""


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` and ``localhost`` are loopback; ``0.0.0.0``, ``::`` and names are not."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, host: str, *, keys_on: bool) -> None:
    """Raise :class:`UnsafeBind` for a non-loopback ``host`` with keys off, unless explicitly allowed."""
    if keys_on or is_loopback(host):
        return
    if settings.allow_unauthenticated:
        log.warning("serving %s WITHOUT API keys (NLP_ALLOW_UNAUTHENTICATED=true): anyone can call it", host)
        return
    raise UnsafeBind(
        f"refusing to serve {host} without API keys: create one (`nlp-service keys create --name NAME "
        "--scopes ...`), set NLP_REQUIRE_API_KEYS=true, bind 127.0.0.1, "
        "or set NLP_ALLOW_UNAUTHENTICATED=true to accept the risk"
    )


def warn_if_open(*, keys_on: bool) -> None:
    """The start-up warning of the embedded default (no keys: every endpoint is open)."""
    if not keys_on:
        log.warning(
            "API keys are off: every endpoint is open to whoever can reach this server; "
            "create a key with `nlp-service keys create` to turn them on"
        )
