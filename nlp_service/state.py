"""What the running app holds: settings, metrics, and the engine and batcher once loaded.

Views do not reach into it: they take what they use from :mod:`nlp_service.deps` (``EngineDep``,
``BatcherDep``, ``SearchDep``, ``SessionFactoryDep``, ...); only the operational endpoints read it whole."""

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
    from nlp_service.inference.engine import Analysis
    from nlp_service.inference.protocol import AnalysisEngine
    from nlp_service.search.service import SearchService
    from nlp_service.worker import Worker


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    engine: AnalysisEngine | None = None
    batcher: MicroBatcher[str, Analysis] | None = None
    ready: bool = False
    load_error: str | None = None
    registry_watcher: asyncio.Task[None] | None = None  # reloads heads on promotion/rollback
    taxonomy_watcher: asyncio.Task[None] | None = None  # serves a newly activated taxonomy version
    worker: Worker | None = None  # the embedded background worker, if run in-process
    db: sessionmaker[Session] | None = None  # opened (and migrated) in the lifespan
    search: SearchService | None = None  # vector + keyword search over stored comments
    auth: Auth | None = None  # API keys + rate limiter (nlp_service.auth)
    secret_box: SecretBox | None = None  # encrypts stored secrets; loaded at start (or on first use)

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
