"""Fixtures for the training tests: a tiny random-init BERT on disk and small synthetic data files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

WORDS = (
    "the a is was and not very good bad great terrible love hate happy sad angry late fast slow service "
    "delivery refund app support thanks awful fine ok i you it this that my order"
).split()


def build_tiny_encoder(path: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """Write a 2-layer, 32-dim BERT (random weights, word-level vocab) to ``path``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz.,!?"]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True).save_pretrained(str(path))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


POSITIVE = [
    "great service",
    "love the app",
    "fast delivery thanks",
    "very good support",
    "happy with my order",
]
NEGATIVE = ["terrible service", "hate the app", "late delivery", "awful support", "bad refund"]
NEUTRAL = ["the order", "my app", "this delivery", "that refund", "the support"]


def sentiment_rows(n_per_class: int = 12) -> list[dict[str, str]]:
    """Distinct texts: each base phrase with a numbered suffix."""
    rows = []
    for label, phrases in (("positive", POSITIVE), ("negative", NEGATIVE), ("neutral", NEUTRAL)):
        for i in range(n_per_class):
            rows.append(
                {"text": f"{phrases[i % len(phrases)]} {'!' * (i // len(phrases) + 1)} {i}", "label": label}
            )
    return rows


def write_rows(path: Path, rows: list[dict[str, object]]) -> Path:
    """Write rows as CSV, JSONL or Parquet by the file suffix."""
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        raise ValueError(path.suffix)
    return path
