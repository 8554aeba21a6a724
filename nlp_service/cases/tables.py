"""``case_entries``: the history of a case, one row per change (who, when, what, note), for any target type
(``alert`` now; ``incident`` uses the same table and service)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from nlp_service.db import Base, UTCDateTime


class CaseEntry(Base):
    __tablename__ = "case_entries"
    __table_args__ = (Index("ix_case_entries_target", "target_type", "target_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target_type: Mapped[str] = mapped_column(String(16))  # alert | incident
    target_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))  # API key id, "open" (keys off) or "system"
    action: Mapped[str] = mapped_column(String(32))  # lifecycle.Action
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(320))  # the owner after this change
    note: Mapped[str | None] = mapped_column(String(1000))
    feedback: Mapped[str | None] = mapped_column(String(16))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
