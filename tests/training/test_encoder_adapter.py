"""``python -m training encoder``: a LoRA adapter trained on a tiny copy of the benchmark datasets, written
small, applied at load onto the base weights (sha256 checked), giving other vectors than the stock encoder."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from nlp_service.inference import encoder as encoder_module
from nlp_service.inference.adapter import ADAPTER_FILE, AdapterError
from nlp_service.inference.encoder import Encoder, weights_sha256
from nlp_service.inference.engine import encoder_version
from nlp_service.inference.registry import ModelRegistry
from tests.training.conftest import WORDS
from training.cli import main
from training.encoder_mtl import EncoderTrainParams, train_encoder

EMOTIONS = ("anger", "fear", "joy", "sadness")
TEXTS = ["great service thanks", "the delivery was late and support never answered", "ok"]


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + f" {i}" for i in range(n)]


def build_tiny_datasets(root: Path, n: int = 24) -> Path:
    """The on-disk formats of the five training datasets, ``n`` rows per split (train and validation)."""
    rng = random.Random(0)
    for task, classes in (("sentiment", 3), ("emotion", 4)):
        folder = root / f"tweeteval_{task}"
        folder.mkdir(parents=True)
        for split in ("train", "val"):
            (folder / f"{split}_text.txt").write_text("\n".join(_texts(n, len(split))) + "\n")
            (folder / f"{split}_labels.txt").write_text("\n".join(str(i % classes) for i in range(n)) + "\n")
    go = root / "goemotions"
    go.mkdir()
    (go / "emotions.txt").write_text("\n".join(["admiration", "anger", "joy", "neutral"]) + "\n")
    for split in ("train", "dev"):
        rows = [f"{t}\t{i % 4}{',2' if i % 5 == 0 else ''}\tid{i}" for i, t in enumerate(_texts(n, 3))]
        (go / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    eb = root / "emobank"
    eb.mkdir()
    with (eb / "emobank.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "split", "V", "A", "D", "text"])
        for split in ("train", "dev"):
            for i, text in enumerate(_texts(n, 4)):
                writer.writerow([f"{split}{i}", split, rng.uniform(1, 5), rng.uniform(1, 5), 3.0, text])
    ei = root / "semeval2018_ei_reg"
    ei.mkdir()
    for emotion in EMOTIONS:
        for split in ("train", "dev"):
            lines = ["ID\tTweet\tAffect Dimension\tIntensity Score"]
            lines += [f"{i}\t{t}\t{emotion}\t{rng.random():.3f}" for i, t in enumerate(_texts(n // 4, 5))]
            (ei / f"EI-reg-En-{emotion}-{split}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def tiny_base(tiny_encoder_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny BERT stands in for the installed base package."""
    monkeypatch.setattr(encoder_module, "_installed_base", lambda: str(tiny_encoder_dir))
    return tiny_encoder_dir


def test_adapter_trains_saves_small_and_serves_other_vectors(tiny_base: Path, tmp_path: Path) -> None:
    data = build_tiny_datasets(tmp_path / "datasets")
    registry = ModelRegistry(tmp_path / "models")
    params = EncoderTrainParams(steps=2, batch_size=8, lr=5e-2, eval_every=1, device="cpu")
    result = train_encoder(
        data_dir=data, registry=registry, base_dir=tiny_base, params=params, progress=False
    )

    assert result.path == tmp_path / "models" / "encoders" / "v1"
    assert registry.encoder_versions() == ["v1"]
    record = json.loads((result.path / ADAPTER_FILE).read_text())
    assert record["base_sha256"] == weights_sha256(tiny_base)
    assert record["data"]["ei_reg"] == {"train": 24, "val": 24}  # 4 emotions x 6 rows
    assert [row["step"] for row in record["history"]] == [1.0, 2.0]
    assert "Trained on cpu" in (result.path / "MODEL_CARD.md").read_text()
    assert sum(p.stat().st_size for p in result.path.iterdir()) < 1_000_000  # the tiny model's deltas

    stock = Encoder(str(tiny_base), max_seq_length=32)
    adapted = Encoder(str(result.path), max_seq_length=32)
    assert adapted.info.base_sha256 == stock.info.sha256 != adapted.info.sha256
    assert adapted.info.adapter is not None and adapted.info.adapter.startswith("v1@")
    assert "+lora-v1@" in encoder_version(adapted.info)
    a, s = adapted.encode(TEXTS), stock.encode(TEXTS)
    assert np.max(np.abs(a.embedding - s.embedding)) > 1e-3  # the adapter changes the vectors
    assert np.allclose(stock.encode(TEXTS).embedding, s.embedding)  # the stock encoder is untouched


def test_adapter_refuses_other_base_weights(tiny_base: Path, tmp_path: Path) -> None:
    data = build_tiny_datasets(tmp_path / "datasets")
    params = EncoderTrainParams(steps=1, batch_size=8, eval_every=1, device="cpu")
    registry = ModelRegistry(tmp_path / "models")
    result = train_encoder(
        data_dir=data, registry=registry, base_dir=tiny_base, params=params, progress=False
    )
    record = json.loads((result.path / ADAPTER_FILE).read_text())
    record["base_sha256"] = "0" * 64
    (result.path / ADAPTER_FILE).write_text(json.dumps(record))
    with pytest.raises(AdapterError, match="base weights"):
        Encoder(str(result.path))


def test_adapter_folder_without_weights_is_refused(tiny_base: Path, tmp_path: Path) -> None:
    folder = tmp_path / "v9"
    folder.mkdir()
    (folder / ADAPTER_FILE).write_text(json.dumps({"base_sha256": weights_sha256(tiny_base)}))
    with pytest.raises(AdapterError, match="lacks"):
        Encoder(str(folder))


def test_cli_writes_an_adapter(tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nlp_service.config.default_encoder_path", lambda: str(tiny_base))
    data = build_tiny_datasets(tmp_path / "datasets")
    registry = str(tmp_path / "models")
    code = main(["encoder", "--data", str(data), "--registry", registry, "--steps", "1", "--batch-size", "4",
                 "--eval-every", "1", "--limit", "8", "--device", "cpu", "--quiet"])  # fmt: skip
    assert code == 0
    record = json.loads((tmp_path / "models" / "encoders" / "v1" / ADAPTER_FILE).read_text())
    assert record["params"]["limit"] == 8 and record["data"]["sentiment"] == {"train": 8, "val": 8}
    assert "--limit 8" in record["command"]
    shutil.rmtree(tmp_path / "models")
