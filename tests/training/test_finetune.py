"""``python -m training <task> --finetune``: a new encoder version under ``<registry>/encoders/`` and a head
bound to it (tiny random-init encoder, tiny synthetic data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import sentiment_rows, write_rows

from nlp_service.inference.encoder import Encoder, weights_sha256
from nlp_service.inference.registry import EncoderMismatchError, ModelRegistry
from training.cli import main

FT = ["--finetune", "--ft-epochs", "1", "--ft-batch-size", "8", "--ft-max-length", "16", "--ft-lr", "1e-3"]
TINY = ["--layers", "1,2", "--hidden", "8", "--epochs", "3", "--no-cache", "--quiet"]


def test_finetune_registers_encoder_and_bound_head(
    tmp_path: Path, tiny_encoder_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_rows(tmp_path / "train.csv", sentiment_rows())
    reg = tmp_path / "models"
    base = [
        "sentiment",
        "--data",
        str(data),
        "--registry",
        str(reg),
        "--encoder",
        str(tiny_encoder_dir),
        *TINY,
    ]
    assert main(base) == 0  # v1 on the frozen base encoder
    code = main([*base, *FT])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "wrote encoder v1" in out

    registry = ModelRegistry(reg)
    assert registry.tasks() == ["sentiment"]  # encoders/ is not a task
    assert registry.versions("sentiment") == ["v1", "v2"] and registry.encoder_versions() == ["v1"]
    enc_dir = reg / "encoders" / "v1"
    for name in ("config.json", "model.safetensors", "finetune.json"):
        assert (enc_dir / name).is_file()
    base_sha = weights_sha256(tiny_encoder_dir)
    tuned = Encoder(str(enc_dir))
    assert tuned.info.sha256 == weights_sha256(enc_dir) != base_sha
    assert tuned.encode(["great service"]).layers.shape == (1, 3, 32)

    head_cfg = json.loads((reg / "sentiment" / "v2" / "config.json").read_text())
    assert head_cfg["encoder"] == {"name": str(enc_dir.resolve()), "sha256": tuned.info.sha256}
    record = json.loads((enc_dir / "finetune.json").read_text())
    assert record["head"] == "sentiment/v2" and record["base"]["sha256"] == base_sha
    card = (reg / "sentiment" / "v2" / "MODEL_CARD.md").read_text()
    assert "Fine-tuned encoder" in card and "Wall time" in card
    assert "previously active version v1" in card

    with pytest.raises(EncoderMismatchError):
        registry.load("sentiment", "v2", Encoder(str(tiny_encoder_dir)).info)
    assert registry.load("sentiment", "v2", tuned.info).version == "v2"
    with pytest.raises(EncoderMismatchError):
        registry.load("sentiment", "v1", tuned.info)


def test_finetune_is_deterministic(
    tmp_path: Path, tiny_encoder_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_rows(tmp_path / "train.csv", sentiment_rows())
    for name in ("a", "b"):
        args = ["sentiment", "--data", str(data), "--registry", str(tmp_path / name)]
        assert main([*args, "--encoder", str(tiny_encoder_dir), *TINY, *FT]) == 0
    capsys.readouterr()
    shas = {n: weights_sha256(tmp_path / n / "encoders" / "v1") for n in "ab"}
    assert shas["a"] == shas["b"]
