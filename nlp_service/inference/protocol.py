"""What the service needs from an engine: the production :class:`~nlp_service.inference.engine.Engine` and
the test suite's fake both satisfy :class:`AnalysisEngine`, and every caller is annotated with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from nlp_service.config import Settings
    from nlp_service.inference.encoder import EncoderInfo
    from nlp_service.inference.engine import Analysis, ModelSet


class EncoderView(Protocol):
    """The encoder as ``/info`` reports it: what identifies it and the runtime it runs on."""

    @property
    def info(self) -> EncoderInfo: ...

    @property
    def runtime(self) -> str: ...


@runtime_checkable
class AnalysisEngine(Protocol):
    """Analysis (heads + topics on one encoder pass), embeddings, sentence spans, the loaded models and their
    reload, the encoder's identity, and the settings it was built with."""

    @property
    def settings(self) -> Settings: ...

    @property
    def models(self) -> ModelSet: ...

    @property
    def encoder(self) -> EncoderView: ...

    def analyze(self, texts: list[str]) -> list[Analysis]:
        """One encoder pass over ``texts``; results in input order."""
        ...

    def embed(self, texts: list[str]) -> np.ndarray:
        """Search embeddings only (L2-normalised)."""
        ...

    def sentences(self, texts: list[str]) -> list[list[tuple[int, int, str]]]:
        """Sentence spans (start, end, text) per text."""
        ...

    def reload(self) -> ModelSet:
        """Swap in the registry's active models; the new set."""
        ...

    def warm_up(self) -> None:
        """Run every path once before serving."""
        ...
