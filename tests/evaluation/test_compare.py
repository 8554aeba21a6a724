"""``python -m evaluation compare``: both versions side by side, per-class rows, each on its own encoder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from evaluation.__main__ import main as evaluation_main
from training.cli import main as training_main

# The training tests' helpers (tiny random BERT, synthetic rows), loaded under their own module name: a
# second ``conftest`` module here would shadow theirs.
_spec = importlib.util.spec_from_file_location(
    "training_test_helpers", Path(__file__).resolve().parent.parent / "training" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

TINY = ["--layers", "1,2", "--hidden", "8", "--epochs", "3", "--no-cache", "--quiet"]


@pytest.fixture(scope="module")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return helpers.build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture(scope="module")
def training_fixtures() -> Any:
    return helpers


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path, training_fixtures: Any
) -> Path:
    """sentiment v1 (frozen tiny encoder) and v2 (fine-tuned encoder) in a temporary registry."""
    tmp_path, fixtures = tmp_path_factory.mktemp("compare"), training_fixtures
    data = fixtures.write_rows(tmp_path / "train.csv", fixtures.sentiment_rows())
    reg = tmp_path / "models"
    args = [
        "sentiment",
        "--data",
        str(data),
        "--registry",
        str(reg),
        "--encoder",
        str(tiny_encoder_dir),
        *TINY,
    ]
    assert training_main(args) == 0
    ft = ["--finetune", "--ft-epochs", "1", "--ft-batch-size", "8", "--ft-max-length", "16"]
    assert training_main([*args, *ft]) == 0
    return reg


def test_compare_prints_both_versions_and_per_class_rows(
    tmp_path: Path,
    tiny_encoder_dir: Path,
    registry: Path,
    training_fixtures: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fixtures = training_fixtures
    rows = fixtures.sentiment_rows(4)
    test_file = fixtures.write_rows(tmp_path / "test.jsonl", rows)
    capsys.readouterr()
    evaluation_main(
        ["compare", "sentiment", "v1", "v2", "--data", str(test_file), "--registry", str(registry),
         "--encoder", str(tiny_encoder_dir), "--no-cache", "--json", str(tmp_path / "cmp.json")]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "# sentiment: v1 vs v2" in out and f"n={len(rows)}" in out
    assert "| metric | v1 | v2 | v2 - v1 |" in out and "| macro_f1 |" in out
    for label in ("negative", "neutral", "positive"):
        assert f"| {label} | 4 |" in out
    result = json.loads((tmp_path / "cmp.json").read_text())
    v1, v2 = result["versions"]["v1"], result["versions"]["v2"]
    assert v1["encoder"]["sha256"] != v2["encoder"]["sha256"]  # each version ran on its own encoder
    assert set(v1["per"]["positive"]) == {"precision", "recall", "f1", "support"}


def test_compare_unknown_version_exits_2(
    tmp_path: Path, registry: Path, training_fixtures: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fixtures = training_fixtures
    test_file = fixtures.write_rows(tmp_path / "test.csv", fixtures.sentiment_rows(4))
    with pytest.raises(SystemExit) as exc:
        evaluation_main(
            ["compare", "sentiment", "v1", "v9", "--data", str(test_file), "--registry", str(registry)]
        )
    assert exc.value.code == 2 and "unknown version 'v9'" in capsys.readouterr().err
