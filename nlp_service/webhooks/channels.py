"""Sending one claimed delivery in its subscription's format: ``standard`` (the signed event JSON, as always),
``slack`` / ``teams`` (the formatted message, POSTed and signed the same way, same SSRF rules) or ``email``
(over SMTP to the recipients stored in the subscription's ``mailto:`` URL)."""

from __future__ import annotations

import json

from nlp_service.webhooks.claims import Claim
from nlp_service.webhooks.formats import message_of, render_http
from nlp_service.webhooks.mailer import Mailer
from nlp_service.webhooks.schemas import recipients_of
from nlp_service.webhooks.sender import Sender, SendResult


async def send_claim(
    claim: Claim, secrets: list[str], *, sender: Sender, mailer: Mailer | None, public_url: str | None
) -> SendResult:
    """One attempt of one delivery."""
    if claim.format == "standard":
        return await sender.send(url=claim.url, msg_id=claim.event_id, body=claim.body, secrets=secrets)
    event = json.loads(claim.body)
    if claim.format == "email":
        if mailer is None:
            return SendResult(None, 0.0, error="e-mail notifications need NLP_SMTP_HOST")
        return await mailer.send(message=message_of(event, public_url), recipients=recipients_of(claim.url))
    body = render_http(claim.format, event, public_url)
    return await sender.send(url=claim.url, msg_id=claim.event_id, body=body, secrets=secrets)
