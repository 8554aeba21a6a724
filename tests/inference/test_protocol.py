"""The production engine and the test fake both satisfy the engine Protocol (at run time, and for mypy)."""

from __future__ import annotations

import pytest

from nlp_service.config import Settings
from nlp_service.inference.engine import Engine
from nlp_service.inference.protocol import AnalysisEngine
from tests.conftest import FakeEngine


def as_protocol(engine: Engine | FakeEngine) -> AnalysisEngine:
    """Type-checked: mypy refuses this if either class stops satisfying :class:`AnalysisEngine`."""
    return engine


def test_fake_engine_satisfies_the_protocol() -> None:
    engine = FakeEngine()
    assert isinstance(engine, AnalysisEngine)
    assert as_protocol(engine).encoder.info.dim == engine.embed(["a text"]).shape[1]


@pytest.mark.slow
def test_engine_satisfies_the_protocol() -> None:
    """Loads the shipped encoder and heads."""
    engine = Engine(Settings())
    assert isinstance(engine, AnalysisEngine)
    assert as_protocol(engine).models.versions["encoder"].startswith("all-MiniLM-L6-v2@")
