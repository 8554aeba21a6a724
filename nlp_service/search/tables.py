"""``database_meta``: facts about the database itself, such as the random identity that ties a saved vector
index to the database its vectors came from."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from nlp_service.db import Base


class DatabaseMeta(Base):
    __tablename__ = "database_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
