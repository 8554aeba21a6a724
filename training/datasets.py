"""Readers for the benchmark datasets under ``/work/shared/datasets`` (each in its own on-disk format).

Every reader returns plain Python lists so that training and evaluation share exactly the same texts (and so
hit the same feature cache entries).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

# As nlp_service.config's; not imported from there: the GPU training run may lack pydantic-settings.
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = (REPO_ROOT / ".." / "shared" / "datasets").resolve()

SENTIMENT_LABELS = ("negative", "neutral", "positive")
TWEETEVAL_EMOTION_LABELS = ("anger", "joy", "optimism", "sadness")
EI_EMOTIONS = ("anger", "fear", "joy", "sadness")


@dataclass
class Split:
    """Texts with either class ids (``labels``), label-id lists (``multi``) or float targets (``targets``)."""

    texts: list[str]
    labels: list[int] = field(default_factory=list)
    multi: list[list[int]] = field(default_factory=list)
    targets: list[list[float]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _lines(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh]


def tweeteval(data_dir: Path, task: str, split: str) -> Split:
    """TweetEval ``sentiment`` or ``emotion``: aligned ``<split>_text.txt`` / ``<split>_labels.txt``."""
    root = data_dir / f"tweeteval_{task}"
    text_file, label_file = root / f"{split}_text.txt", root / f"{split}_labels.txt"
    texts = [t.strip() for t in _lines(text_file)]
    labels = [int(x) for x in _lines(label_file) if x.strip()]
    texts = texts[: len(labels)]  # a trailing empty line is not a row
    return Split(texts=texts, labels=labels, files=[text_file, label_file])


def goemotions_labels(data_dir: Path) -> list[str]:
    return [
        x.strip() for x in (data_dir / "goemotions" / "emotions.txt").read_text().split("\n") if x.strip()
    ]


def goemotions(data_dir: Path, split: str) -> Split:
    """GoEmotions TSV (no header): text, comma-separated label ids, comment id."""
    path = data_dir / "goemotions" / f"{split}.tsv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return Split(
        texts=[r[0] for r in rows], multi=[[int(x) for x in r[1].split(",")] for r in rows], files=[path]
    )


def emobank(data_dir: Path, split: str) -> Split:
    """EmoBank rows of one official split; targets are the raw ``[V, A]`` ratings (1-5 scale)."""
    path = data_dir / "emobank" / "emobank.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == split]
    return Split(
        texts=[r["text"] for r in rows], targets=[[float(r["V"]), float(r["A"])] for r in rows], files=[path]
    )


def ei_reg(data_dir: Path, emotion: str, split: str) -> Split:
    """SemEval-2018 EI-reg for one emotion; targets are ``[intensity]`` in [0, 1]."""
    path = data_dir / "semeval2018_ei_reg" / f"EI-reg-En-{emotion}-{split}.txt"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return Split(
        texts=[r["Tweet"] for r in rows], targets=[[float(r["Intensity Score"])] for r in rows], files=[path]
    )


def banking77(data_dir: Path, split: str) -> tuple[Split, list[str]]:
    """Banking77 ``text,category`` CSV; labels index the sorted ``categories.json`` names."""
    names = sorted(json.loads((data_dir / "banking77" / "categories.json").read_text()))
    index = {n: i for i, n in enumerate(names)}
    path = data_dir / "banking77" / f"{split}.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return Split(
        texts=[r["text"] for r in rows], labels=[index[r["category"]] for r in rows], files=[path]
    ), names


def all_texts(data_dir: Path) -> dict[str, list[str]]:
    """Every text list the default heads and the evaluation encode, by short name (for prefetching)."""
    out: dict[str, list[str]] = {}
    for split in ("train", "val", "test"):
        out[f"sentiment/{split}"] = tweeteval(data_dir, "sentiment", split).texts
        out[f"tweeteval_emotion/{split}"] = tweeteval(data_dir, "emotion", split).texts
    for split in ("train", "dev", "test"):
        out[f"goemotions/{split}"] = goemotions(data_dir, split).texts
        out[f"emobank/{split}"] = emobank(data_dir, split).texts
    for emotion in EI_EMOTIONS:
        for split in ("train", "dev"):
            out[f"ei_reg/{emotion}/{split}"] = ei_reg(data_dir, emotion, split).texts
    for split in ("train", "test"):
        out[f"banking77/{split}"] = banking77(data_dir, split)[0].texts
    return out
