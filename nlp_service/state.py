"""What the running app holds: settings, metrics, and the engine and batcher once loaded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.errors import NotReady
from nlp_service.metrics import Metrics

if TYPE_CHECKING:
    from nlp_service.auth.deps import Auth
    from nlp_service.hardening.secretbox import SecretBox
    from nlp_service.inference.batcher import MicroBatcher
    from nlp_service.inference.engine import Analysis, Engine
    from nlp_service.search.service import SearchService
    from nlp_service.worker import Worker


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    engine: Engine | None = None
    batcher: MicroBatcher[str, Analysis] | None = None
    ready: bool = False
    load_error: str | None = None
    registry_watcher: asyncio.Task[None] | None = None  # reloads heads on promotion/rollback
    worker: Worker | None = None  # the embedded background worker, if run in-process
    db: sessionmaker[Session] | None = None  # opened (and migrated) in the lifespan
    search: SearchService | None = None  # vector + keyword search over stored comments
    auth: Auth | None = None  # API keys + rate limiter (nlp_service.auth)
    secret_box: SecretBox | None = None  # encrypts stored secrets; loaded at start (or on first use)

    def require_engine(self) -> tuple[Engine, MicroBatcher[str, Analysis]]:
        """The engine and batcher, or 503 while models are loading (or failed to load)."""
        if not self.ready or self.engine is None or self.batcher is None:
            raise NotReady(self.load_error or "models are still loading")
        return self.engine, self.batcher

    def require_db(self) -> sessionmaker[Session]:
        """The session factory, or 503 before the database is open."""
        if self.db is None:
            raise NotReady("the database is not open yet")
        return self.db

    def require_secret_box(self) -> SecretBox:
        """The box sealing stored secrets (``NLP_SECRET_KEYS`` or the key file), loaded once."""
        if self.secret_box is None:
            from nlp_service.hardening.secretbox import load_secret_box

            self.secret_box = load_secret_box(self.settings)
        return self.secret_box

    def require_search(self) -> SearchService:
        """The search service, or 503 before it is open."""
        if self.search is None:
            raise NotReady("the search index is not open yet")
        return self.search
