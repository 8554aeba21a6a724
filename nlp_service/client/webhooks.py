"""Verifying a received webhook (Standard Webhooks signatures)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def verify_webhook(
    body: bytes | str, headers: Mapping[str, str], secret: str | Sequence[str]
) -> dict[str, Any]:
    """The verified event (``{"id", "type", "timestamp", "version", "data"}``) of a received webhook request.

    ``secret`` is the subscription's ``whsec_...`` secret (or several, during a rotation). Raises
    ``standardwebhooks.WebhookVerificationError`` on a bad signature or a timestamp older than 5 minutes.
    Needs the ``standardwebhooks`` package (``pip install 'nlp-service[client]'``).
    """
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    lower = {k.lower(): v for k, v in headers.items()}
    payload = body.decode() if isinstance(body, bytes) else body
    secrets = [secret] if isinstance(secret, str) else list(secret)
    error: WebhookVerificationError | None = None
    for candidate in secrets:
        try:
            event: dict[str, Any] = Webhook(candidate).verify(payload, lower)
            return event
        except WebhookVerificationError as exc:
            error = exc
    raise error or WebhookVerificationError("no secret given")
