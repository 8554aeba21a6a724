"""``idempotency_keys``: a row per (client, Idempotency-Key), holding the first response until it expires."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nlp_service.db import Base, UTCDateTime


class IdempotencyRecord(Base):
    """The client's key itself is not stored: ``id`` is a hash of (client, key), and the response body is
    sealed with a key derived from it, so the database alone cannot replay (or read) a stored secret."""

    __tablename__ = "idempotency_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, doc="hex SHA-256 of (client, key)")
    fingerprint: Mapped[str] = mapped_column(String(64), doc="hex SHA-256 of method, path and body")
    state: Mapped[str] = mapped_column(String(16), doc="running | done")
    token: Mapped[str] = mapped_column(String(32), doc="the claim's owner: only it may complete the row")
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime, doc="a running claim may be taken over after")
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True, doc="the sealed response body")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
