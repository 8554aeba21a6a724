"""E-mail message (plain text + HTML alternative) for one event."""

from __future__ import annotations

import html
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from nlp_service.webhooks.formats.message import Message


def _html(msg: Message) -> str:
    rows = "".join(
        f"<tr><th align='left'>{html.escape(n)}</th><td>{html.escape(v)}</td></tr>" for n, v in msg.facts
    )
    parts = [f"<h2>{html.escape(msg.title)}</h2>", f"<p>{html.escape(msg.headline)}</p>"]
    if rows:
        parts.append(f"<table>{rows}</table>")
    if msg.key_phrases:
        parts.append(f"<p>Key phrases: {html.escape(', '.join(msg.key_phrases))}</p>")
    if msg.link:
        parts.append(f"<p><a href='{html.escape(msg.link, quote=True)}'>Open</a></p>")
    return "<html><body>" + "".join(parts) + "</body></html>"


def to_email(msg: Message, *, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The message to send; ``X-Webhook-Id`` carries the event id (the same on every retry: deduplicate)."""
    mail = EmailMessage()
    mail["Subject"] = msg.subject.replace("\r", " ").replace("\n", " ")
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(idstring=msg.event_id or None, domain="nlp-service")
    mail["X-Webhook-Id"] = msg.event_id
    mail["X-Event-Type"] = msg.event_type
    mail.set_content(msg.text())
    mail.add_alternative(_html(msg), subtype="html")
    return mail
