"""The heads committed under models/: complete artifacts, one encoder, small; and (slow) sane predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nlp_service.config import REPO_ROOT
from nlp_service.inference.registry import ModelRegistry

MODELS = REPO_ROOT / "models"
HEAD_TASKS = ("sentiment", "emotion", "emotion4", "intensity", "valence")
REGISTRY = ModelRegistry(MODELS)
SHIPPED = [t for t in HEAD_TASKS if REGISTRY.versions(t)]


@pytest.mark.parametrize("task", SHIPPED)
def test_shipped_head_is_complete_and_small(task: str) -> None:
    path = REGISTRY.path(task, REGISTRY.active_version(task))
    for name in ("weights.safetensors", "config.json", "metrics.json", "MODEL_CARD.md"):
        assert (path / name).is_file(), name
    assert (path / "weights.safetensors").stat().st_size < 2_000_000
    config = json.loads((path / "config.json").read_text())
    assert config["encoder"]["sha256"] and config["data"]["sha256"]
    assert "python -m training defaults" in (path / "MODEL_CARD.md").read_text()
    head = REGISTRY.load_active(task)
    assert len(head.labels) == head.weights[f"dense.{len(head.config.hidden)}.bias"].shape[0]


def test_shipped_heads_share_one_encoder() -> None:
    shas = {REGISTRY.load_active(t).encoder_sha256 for t in SHIPPED}
    assert len(shas) <= 1


@pytest.mark.slow
def test_shipped_heads_on_the_real_encoder() -> None:
    from nlp_service.config import default_encoder_path
    from nlp_service.inference.encoder import Encoder

    encoder = Encoder(default_encoder_path(), threads=2)
    texts = [
        "I love this app, thank you so much, the support team was wonderful!",
        "This is the worst service ever, I am furious and want a refund.",
        "The parcel arrived on Tuesday.",
    ]
    encoded = encoder.encode(texts)  # one pass for every head
    heads = {t: REGISTRY.load_active(t, encoder.info) for t in SHIPPED}
    out = {t: h.predict(encoded) for t, h in heads.items()}
    for task, values in out.items():
        assert values.shape == (3, len(heads[task].labels))
    if "sentiment" in out:
        labels = heads["sentiment"].labels
        assert [labels[i] for i in out["sentiment"].argmax(axis=1)] == ["positive", "negative", "neutral"]
    if "valence" in out:
        valence = out["valence"][:, heads["valence"].labels.index("valence")]
        assert valence[0] > valence[2] > valence[1]
        assert np.all((out["valence"] >= [-1, 0]) & (out["valence"] <= [1, 1]))
    if "intensity" in out:
        anger = out["intensity"][:, heads["intensity"].labels.index("anger")]
        assert anger[1] > anger[0]
