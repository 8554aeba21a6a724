"""Structured logs: one JSON object per line, with the request id, and secrets redacted.

Fields: ``time``, ``level``, ``logger``, ``message``, ``request_id`` and any ``extra`` (the access log adds
``method``, ``path``, ``status``, ``duration_ms``, ``key_id``); ``exc`` holds a traceback, in the log only.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

REDACTED = "[REDACTED]"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization header values, in any quoting: "authorization: Bearer x", {'authorization': 'x'}
    (re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*\(?['\"]?)(?:bearer\s+|basic\s+)?[^\s'\",)}]+"), r"\1"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 "),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), "whsec_"),
    (re.compile(r"\b(nlp_[0-9a-f]{16}_)[A-Za-z0-9_-]+"), r"\1"),
]
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}
_SKIP_EXTRAS = frozenset({"color_message", "request_id"})


def redact(text: str) -> str:
    """Remove Authorization values, webhook secrets (``whsec_...``) and API key secrets (``nlp_<id>_...``)."""
    for pattern, keep in _PATTERNS:
        text = pattern.sub(keep + REDACTED, text)
    return text


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: a URL without its credentials, path, query and fragment (which may hold
    tokens), for logs and for events other parties see. Use it wherever a stored URL is shown."""
    try:
        parts = urlsplit(str(url))
        host, port = parts.hostname, parts.port
    except ValueError:
        return "[redacted URL]"
    if not parts.scheme or not host:
        return "[redacted URL]"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    rest = "/" if parts.path in ("", "/") and not parts.query and not parts.fragment else "/…"
    return f"{parts.scheme}://{netloc}{rest}"


class UrlArgsFilter(logging.Filter):
    """On a library's logger (httpx logs ``HTTP Request: POST <url>`` at INFO): URL arguments redacted."""

    def __init__(self, *url_types: type) -> None:
        super().__init__()
        self.url_types = url_types

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(arg)) if isinstance(arg, self.url_types) else arg for arg in record.args
            )
        return True


class RedactingFilter(logging.Filter):
    """Redacts a record's message (args applied) and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the finished line is redacted once more."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in out and key not in _SKIP_EXTRAS:
                out[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        return redact(json.dumps(out, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = REQUEST_ID.get() or "-"
        return redact(super().format(record))


def configure_logging(level: str = "info", fmt: str = "json") -> logging.Handler:
    """Route every logger (uvicorn's too) through one redacting stderr handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
