"""What the running app holds: settings, metrics, and the engine and batcher once loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nlp_service.config import Settings
from nlp_service.errors import NotReady
from nlp_service.metrics import Metrics

if TYPE_CHECKING:
    from nlp_service.inference.batcher import MicroBatcher
    from nlp_service.inference.engine import Analysis, Engine


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    engine: Engine | None = None
    batcher: MicroBatcher[str, Analysis] | None = None
    ready: bool = False
    load_error: str | None = None

    def require_engine(self) -> tuple[Engine, MicroBatcher[str, Analysis]]:
        """The engine and batcher, or 503 while models are loading (or failed to load)."""
        if not self.ready or self.engine is None or self.batcher is None:
            raise NotReady(self.load_error or "models are still loading")
        return self.engine, self.batcher
