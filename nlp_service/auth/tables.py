"""``api_keys``: one row per key. Only a salted HMAC-SHA256 of the secret is stored, never the key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from nlp_service.db import Base


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(200), doc="comma-separated, sorted")
    salt: Mapped[str] = mapped_column(String(32), doc="hex, per key")
    secret_hash: Mapped[str] = mapped_column(String(64), doc="hex HMAC-SHA256(salt, secret)")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    @property
    def scope_list(self) -> list[str]:
        return [s for s in self.scopes.split(",") if s]

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None
