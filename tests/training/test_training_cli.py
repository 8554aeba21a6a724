"""``python -m training``: bad-input errors (exit code 2, no traceback), runs writing registry versions,
list/show/promote/rollback, and determinism under a seed. Uses a tiny random-init encoder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import sentiment_rows, write_rows

from nlp_service.config import REPO_ROOT
from nlp_service.inference.heads import load_head
from nlp_service.inference.registry import ModelRegistry
from training.cli import main

TINY = ["--layers", "1,2", "--hidden", "8", "--epochs", "3", "--no-cache", "--quiet"]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def train_args(tmp_path: Path, encoder: Path, data: Path, task: str = "sentiment", *extra: str) -> list[str]:
    return [
        task,
        "--data",
        str(data),
        "--registry",
        str(tmp_path / "models"),
        "--encoder",
        str(encoder),
        *TINY,
        *extra,
    ]


# -- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        ([{"text": "good", "sentiment": "positive"}], [], "missing column(s) 'label'"),
        (sentiment_rows() + [{"text": "  ", "label": "positive"}], [], "empty row(s)"),
        (sentiment_rows() + [{"text": "some text", "label": ""}], [], "empty row(s)"),
        (sentiment_rows() + [sentiment_rows()[0]], [], "duplicate row(s)"),
        (sentiment_rows() + [{"text": "meh", "label": "mixed"}], [], "unknown label(s) 'mixed'"),
        (sentiment_rows()[:-11], [], "fewer than 2 examples: 'neutral' (1)"),
        (sentiment_rows(), ["--labels", "negative,neutral,positive,angry"], "'angry' (0)"),
    ],
    ids=[
        "missing-column",
        "empty-text",
        "empty-label",
        "duplicate",
        "unknown-label",
        "too-few",
        "absent-class",
    ],
)
def test_classification_input_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list, extra: list[str], message: str
) -> None:
    data = write_rows(tmp_path / "train.csv", rows)
    code, _, err = run(train_args(tmp_path, tmp_path / "no-encoder", data, "sentiment", *extra), capsys)
    assert code == 2
    assert message in err and err.startswith("error: ")
    assert "Traceback" not in err
    assert not (tmp_path / "models").exists()  # nothing written, the encoder never loaded


def test_missing_file_and_bad_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(train_args(tmp_path, tmp_path, tmp_path / "nope.csv"), capsys)
    assert code == 2 and "data file not found" in err
    (tmp_path / "data.xlsx").write_text("x")
    code, _, err = run(train_args(tmp_path, tmp_path, tmp_path / "data.xlsx"), capsys)
    assert code == 2 and "unsupported file type" in err
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": "positive"}\n{not json\n')
    code, _, err = run(train_args(tmp_path, tmp_path, tmp_path / "bad.jsonl"), capsys)
    assert code == 2 and "line 2 is not valid JSON" in err
    (tmp_path / "empty.csv").write_text("text,label\n")
    code, _, err = run(train_args(tmp_path, tmp_path, tmp_path / "empty.csv"), capsys)
    assert code == 2 and "no data rows" in err


def test_val_file_errors_are_reported_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_rows(tmp_path / "train.csv", sentiment_rows())
    val = write_rows(tmp_path / "val.csv", [{"text": "x", "label": "positive"}])
    code, _, err = run(train_args(tmp_path, tmp_path, data, "sentiment", "--val", str(val)), capsys)
    assert code == 2 and "val.csv" in err and "fewer than 2" in err


def test_multilabel_unknown_label(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"text": f"text {i}", "emotions": "joy|love" if i % 2 else "anger"} for i in range(10)]
    rows.append({"text": "odd one", "emotions": "joy|zest"})
    data = write_rows(tmp_path / "e.jsonl", rows)
    args = train_args(tmp_path, tmp_path, data, "emotion", "--label-col", "emotions", "--label-sep", "|")
    code, _, err = run(args, capsys)
    assert code == 2 and "unknown label(s) 'zest'" in err


def test_regression_needs_numeric_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"text": f"text {i}", "v": str(i / 10), "a": "high" if i == 3 else "0.5"} for i in range(10)]
    data = write_rows(tmp_path / "va.csv", rows)
    code, _, err = run(train_args(tmp_path, tmp_path, data, "valence", "--label-col", "v,a"), capsys)
    assert code == 2 and "column 'a' must be numeric" in err and "'high'" in err


def test_module_entry_point_exits_2_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training", "sentiment", "--data", str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "data file not found" in proc.stderr and "Traceback" not in proc.stderr


# -- successful runs ----------------------------------------------------------------------------------------
def test_runs_write_new_versions_and_registry_commands(
    tmp_path: Path, tiny_encoder_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_rows(tmp_path / "train.csv", sentiment_rows())
    code, out, err = run(train_args(tmp_path, tiny_encoder_dir, data), capsys)
    assert code == 0, err
    registry = ModelRegistry(tmp_path / "models")
    assert registry.versions("sentiment") == ["v1"]
    path = registry.path("sentiment", "v1")
    for name in ("weights.safetensors", "config.json", "metrics.json", "MODEL_CARD.md"):
        assert (path / name).is_file()
    config = json.loads((path / "config.json").read_text())
    assert config["labels"] == ["negative", "neutral", "positive"]
    assert (
        config["encoder"]["sha256"] and config["data"]["sha256"] and config["training"]["params"]["seed"] == 0
    )
    assert "python -m training sentiment" in (path / "MODEL_CARD.md").read_text()
    assert "macro_recall" in json.loads((path / "metrics.json").read_text())["validation"]

    assert run(train_args(tmp_path, tiny_encoder_dir, data, "sentiment", "--seed", "1"), capsys)[0] == 0
    assert registry.versions("sentiment") == ["v1", "v2"]
    assert registry.active_version("sentiment") == "v1"  # a new version is not promoted unless asked

    reg = ["--registry", str(tmp_path / "models")]
    code, out, _ = run(["list", *reg], capsys)
    assert code == 0 and "* sentiment  v1" in out and "  sentiment  v2" in out
    code, out, _ = run(["promote", "sentiment", "v2", *reg], capsys)
    assert code == 0 and registry.active_version("sentiment") == "v2"
    code, out, _ = run(["show", "sentiment", *reg], capsys)
    shown = json.loads(out)
    assert shown["version"] == "v2" and shown["active"] and shown["history"] == ["v1"]
    code, out, _ = run(["rollback", "sentiment", *reg], capsys)
    assert code == 0 and registry.active_version("sentiment") == "v1"
    code, _, err = run(["rollback", "sentiment", *reg], capsys)
    assert code == 2 and "no earlier active version" in err
    code, _, err = run(["promote", "sentiment", "v7", *reg], capsys)
    assert code == 2 and "unknown version 'v7'" in err


def test_same_seed_same_weights(
    tmp_path: Path, tiny_encoder_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_rows(tmp_path / "train.parquet", sentiment_rows())
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        args = train_args(tmp_path, tiny_encoder_dir, data, "sentiment", "--seed", seed)
        args[args.index("--registry") + 1] = str(tmp_path / name)
        assert run(args, capsys)[0] == 0
    weights = {n: (tmp_path / n / "sentiment" / "v1" / "weights.safetensors").read_bytes() for n in "abc"}
    assert weights["a"] == weights["b"]
    assert weights["a"] != weights["c"]


def test_multilabel_and_regression_runs(
    tmp_path: Path, tiny_encoder_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {
            "text": f"{w} {i}",
            "emotions": ["joy", "love"] if i % 3 == 0 else ["anger"] if i % 3 == 1 else ["joy"],
        }
        for i, w in enumerate(["good", "bad", "great", "awful", "love", "hate"] * 4)
    ]
    data = write_rows(tmp_path / "e.parquet", rows)
    args = train_args(
        tmp_path, tiny_encoder_dir, data, "emotion", "--label-col", "emotions", "--labels", "anger,joy,love"
    )
    code, _, err = run(args, capsys)
    assert code == 0, err
    head = load_head(tmp_path / "models" / "emotion" / "v1")
    assert head.kind == "sigmoid" and head.labels == ["anger", "joy", "love"] and len(head.thresholds) == 3

    rows = [
        {"text": f"{w} {i}", "v": (i % 5) / 5 - 0.5, "a": (i % 3) / 3}
        for i, w in enumerate(["good", "bad"] * 10)
    ]
    data = write_rows(tmp_path / "va.jsonl", rows)
    code, _, err = run(train_args(tmp_path, tiny_encoder_dir, data, "valence", "--label-col", "v,a"), capsys)
    assert code == 0, err
    head = load_head(tmp_path / "models" / "valence" / "v1")
    assert head.kind == "regression" and head.labels == ["v", "a"]
    assert head.config.output_scale is not None and head.config.output_offset is not None


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parquet input needs the ``parquet`` extra; without pyarrow the error says so."""
    from training.data import read_table
    from training.errors import TrainingDataError

    data = tmp_path / "train.parquet"
    data.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # an import of it raises ImportError
    with pytest.raises(TrainingDataError, match=r"nlp-service\[parquet\]"):
        read_table(data)
