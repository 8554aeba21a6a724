"""A real local SMTP receiver for tests (``aiosmtpd``): records messages, can refuse the next N (451)."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


@dataclass
class _Handler:
    fail_next: int = 0
    attempts: int = 0
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.attempts += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return "451 4.3.0 try again later"
        mail = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), mail))  # type: ignore[arg-type]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalSmtp:
    """``with LocalSmtp(fail_next=1) as smtp: smtp.port ... smtp.messages``."""

    def __init__(
        self, *, fail_next: int = 0, tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None
    ) -> None:
        """``tls``: offer STARTTLS with this server context and require it; ``login``: require AUTH with
        this user and password (``logins`` records what clients sent)."""
        self.handler = _Handler(fail_next=fail_next)
        self.port = free_port()
        self.logins: list[tuple[str, str]] = []
        options: dict[str, Any] = {}
        if tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        if login is not None:
            options.update(
                authenticator=self._authenticate(login),
                auth_required=True,
                auth_exclude_mechanism=["LOGIN"],  # PLAIN only: one try per client login
            )
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)

    def _authenticate(self, expected: tuple[str, str]) -> Any:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            got = (data.login.decode(), data.password.decode())
            self.logins.append(got)
            return AuthResult(success=got == expected, handled=False)

        return check

    @property
    def messages(self) -> list[tuple[list[str], EmailMessage]]:
        return self.handler.messages

    def __enter__(self) -> LocalSmtp:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
