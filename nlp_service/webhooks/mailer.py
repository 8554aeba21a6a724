"""Sending one e-mail over SMTP (the ``email`` notification format): the server comes from settings
(``NLP_SMTP_*``), the recipients from the subscription. smtplib runs on the mailer's own threads, bounded by
the webhook timeout; the outcome is a :class:`SendResult` like an HTTP attempt's (250 = accepted), so the
outbox retries, backs off and gives up exactly as for webhooks."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage

from nlp_service.config import Settings
from nlp_service.webhooks.formats.mail import to_email
from nlp_service.webhooks.formats.message import Message
from nlp_service.webhooks.sender import SendResult


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    security: str  # starttls | tls | none
    user: str | None = None
    password: str | None = None
    timeout_s: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout_s=settings.webhook_timeout_s,
        )


class Mailer:
    def __init__(
        self, config: SmtpConfig, *, max_connections: int = 4, tls: ssl.SSLContext | None = None
    ) -> None:
        self.config = config
        self.tls = tls  # TLS settings (default: the system's CAs; a context trusting a test CA in tests)
        self._pool = ThreadPoolExecutor(max_workers=max(1, max_connections), thread_name_prefix="smtp")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _send_now(self, mail: EmailMessage, recipients: Sequence[str]) -> str:
        cfg = self.config
        context = self.tls or ssl.create_default_context()
        smtp: smtplib.SMTP
        if cfg.security == "tls":
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        with smtp:
            if cfg.security == "starttls":
                smtp.starttls(context=context)
            if cfg.user:
                smtp.login(cfg.user, cfg.password or "")
            refused = smtp.send_message(mail, from_addr=cfg.sender, to_addrs=list(recipients))
        accepted = len(recipients) - len(refused)
        return f"250 accepted for {accepted} of {len(recipients)} recipients"

    async def send(self, *, message: Message, recipients: Sequence[str]) -> SendResult:
        """One attempt: 250 when the server accepted it for at least one recipient, else an error."""
        started = time.perf_counter()

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 2)

        mail = to_email(message, sender=self.config.sender, recipients=recipients)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.config.timeout_s):
                snippet = await loop.run_in_executor(self._pool, self._send_now, mail, recipients)
        except TimeoutError:
            return SendResult(None, elapsed(), error=f"SMTP timed out after {self.config.timeout_s:g}s")
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            return SendResult(None, elapsed(), error=f"SMTP recipients refused ({codes})"[:500])
        except smtplib.SMTPResponseException as exc:
            detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
            return SendResult(None, elapsed(), error=f"SMTP {exc.smtp_code}: {detail}"[:500])
        except (smtplib.SMTPException, OSError) as exc:
            return SendResult(None, elapsed(), error=f"SMTP {type(exc).__name__}: {exc}"[:500])
        return SendResult(250, elapsed(), snippet=snippet)
