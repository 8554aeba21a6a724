"""Model registry: listing, version order, promote/rollback history, encoder-mismatch refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlp_service.inference.encoder import Encoded, EncoderInfo
from nlp_service.inference.heads import FeatureSpec, HeadConfig, save_head
from nlp_service.inference.registry import (
    EncoderMismatchError,
    ModelRegistry,
    RegistryError,
    version_key,
)

SHA = "1" * 64
DIM = 384


def add_version(registry: ModelRegistry, task: str, *, sha: str = SHA, bias: float = 0.0) -> str:
    version, path = registry.new_version_dir(task)
    rng = np.random.default_rng(0)
    weights = {
        "input_mean": np.zeros(DIM, np.float32),
        "input_scale": np.ones(DIM, np.float32),
        "dense.0.weight": rng.normal(size=(2, DIM)).astype(np.float32),
        "dense.0.bias": np.array([bias, 0.0], np.float32),
    }
    config = HeadConfig(
        task=task,
        version=version,
        kind="softmax",
        labels=["a", "b"],
        features=FeatureSpec((6,)),
        encoder_name="enc",
        encoder_sha256=sha,
    )
    save_head(path, config, weights, metrics={"validation": {"accuracy": 0.5}})
    return version


def info(sha: str) -> EncoderInfo:
    return EncoderInfo(name="my-encoder", sha256=sha, dim=DIM, num_layers=6, max_length=256, quantized=False)


def test_listing_and_version_order(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    assert registry.tasks() == []
    for _ in range(11):
        add_version(registry, "sentiment")
    add_version(registry, "emotion")
    assert registry.tasks() == ["emotion", "sentiment"]
    assert registry.versions("sentiment") == [f"v{i}" for i in range(1, 12)]  # v10 after v9
    assert registry.next_version("sentiment") == "v12"
    assert sorted(["v10", "v2", "2024-01-01"], key=version_key) == ["v2", "v10", "2024-01-01"]
    rows = registry.describe("emotion")
    assert (
        rows[0]["version"] == "v1"
        and rows[0]["active"]
        and rows[0]["metrics"]["validation"]["accuracy"] == 0.5
    )


def test_promote_and_rollback_keep_a_history(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    for _ in range(3):
        add_version(registry, "sentiment")
    assert registry.active_version("sentiment") == "v3"  # no pointer yet: the newest
    registry.promote("sentiment", "v1")
    registry.promote("sentiment", "v2")
    registry.promote("sentiment", "v3")
    assert registry.active_version("sentiment") == "v3"
    assert registry.history("sentiment") == ["v1", "v2"]
    assert registry.rollback("sentiment") == "v2"
    assert registry.rollback("sentiment") == "v1"
    assert registry.active_version("sentiment") == "v1"
    with pytest.raises(RegistryError, match="no earlier active version"):
        registry.rollback("sentiment")
    add_version(registry, "sentiment")  # a new version does not move the pointer
    assert registry.active_version("sentiment") == "v1"
    assert (tmp_path / "sentiment" / "registry.json").is_file()


def test_unknown_task_or_version(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    add_version(registry, "sentiment")
    with pytest.raises(RegistryError, match="unknown version 'v9'"):
        registry.promote("sentiment", "v9")
    with pytest.raises(RegistryError, match="no versions of task 'nope'"):
        registry.load_active("nope")


def test_load_active_refuses_a_head_of_another_encoder(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    add_version(registry, "sentiment", sha=SHA)
    head = registry.load_active("sentiment", info(SHA))
    encoded = Encoded(np.ones((2, 7, DIM), np.float32), np.ones((2, DIM), np.float32), [False] * 2, [1, 1])
    assert head.predict(encoded).shape == (2, 2)
    other = "2" * 64
    with pytest.raises(EncoderMismatchError) as err:
        registry.load_active("sentiment", info(other))
    assert SHA in str(err.value) and other in str(err.value) and "sentiment/v1" in str(err.value)


def test_loaded_version_matches_pointer(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    add_version(registry, "sentiment", bias=5.0)
    add_version(registry, "sentiment", bias=-5.0)
    registry.promote("sentiment", "v1")
    encoded = Encoded(np.zeros((1, 7, DIM), np.float32), np.zeros((1, DIM), np.float32), [False], [1])
    assert registry.load_active("sentiment", SHA).predict(encoded)[0, 0] > 0.99
    registry.promote("sentiment", "v2")
    assert registry.load_active("sentiment", SHA).predict(encoded)[0, 0] < 0.01
