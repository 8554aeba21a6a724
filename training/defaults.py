"""Reproduce every shipped default head from the benchmark datasets (``python -m training defaults``).

| task | data | validation (early stopping / thresholds) | held-out scores in metrics.json |
|---|---|---|---|
| sentiment | tweeteval_sentiment train | val | test |
| emotion4 | tweeteval_emotion train | val | test |
| emotion | goemotions train | dev | test |
| valence | emobank train, valence=(V-3)/2, arousal=(A-1)/4 | dev | test |
| intensity | semeval2018_ei_reg train (4 emotions) | 10% of train, seeded | dev (no test set here) |

Exact duplicate rows (same text and label) of the training splits are dropped. With ``finetune`` the encoder
is fine-tuned on each task's train split first (see :mod:`training.finetune`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from nlp_service.inference.registry import ModelRegistry
from training import datasets as ds
from training.cache import FeatureCache
from training.data import ClassData, Data, MultiLabelData, RegressionData, fingerprint
from training.errors import TrainingDataError
from training.pipeline import TrainOutcome, split_validation, subset, train_head
from training.tasks import TASKS, TaskSpec
from training.trainer import TrainParams

if TYPE_CHECKING:
    from training.finetune import FinetuneParams

COMMAND = "python -m training defaults --data ../shared/datasets"
ORDER = ("sentiment", "emotion4", "emotion", "valence", "intensity")


def _dedupe(data: Data) -> Data:
    """Drop exact duplicate rows (same text and target), keeping the first."""
    if isinstance(data, ClassData):
        keys = [(t, int(y)) for t, y in zip(data.texts, data.labels, strict=True)]
    else:
        keys = [
            (t, *np.nan_to_num(y, nan=-9e9).tolist()) for t, y in zip(data.texts, data.targets, strict=True)
        ]
    seen: set[tuple[object, ...]] = set()
    keep = []
    for i, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    out = subset(data, np.asarray(keep, dtype=np.int64))
    out.dropped_duplicates = len(keys) - len(keep)
    return out


def _encoded(data: Data, cache: FeatureCache | None, progress: bool) -> Data:
    """Attach the encoding (``cache`` None: leave the data unencoded)."""
    if cache is not None:
        data.encoded = cache.encode(data.texts, progress=progress)
    return data


def _tweeteval(
    data_dir: Path, task: str, split: str, labels: tuple[str, ...]
) -> tuple[ClassData, list[Path]]:
    s = ds.tweeteval(data_dir, task, split)
    return ClassData(
        texts=s.texts, labels=np.asarray(s.labels, dtype=np.int64), label_names=list(labels)
    ), s.files


def _goemotions(data_dir: Path, split: str) -> tuple[MultiLabelData, list[Path]]:
    s = ds.goemotions(data_dir, split)
    names = ds.goemotions_labels(data_dir)
    if tuple(names) != TASKS["emotion"].labels:
        raise TrainingDataError(
            f"{data_dir}/goemotions/emotions.txt does not list the 28 GoEmotions labels in order"
        )
    targets = np.zeros((len(s.texts), len(names)), dtype=np.float32)
    for i, ids in enumerate(s.multi):
        targets[i, ids] = 1.0
    return MultiLabelData(texts=s.texts, targets=targets, label_names=names), s.files


def _emobank(data_dir: Path, split: str) -> tuple[RegressionData, list[Path]]:
    s = ds.emobank(data_dir, split)
    va = np.asarray(s.targets, dtype=np.float64)
    targets = np.stack([(va[:, 0] - 3.0) / 2.0, (va[:, 1] - 1.0) / 4.0], axis=1)
    return RegressionData(texts=s.texts, targets=targets, output_names=["valence", "arousal"]), s.files


def _ei_reg(data_dir: Path, split: str) -> tuple[RegressionData, list[Path]]:
    texts: list[str] = []
    blocks, files = [], []
    for j, emotion in enumerate(ds.EI_EMOTIONS):
        s = ds.ei_reg(data_dir, emotion, split)
        y = np.full((len(s.texts), len(ds.EI_EMOTIONS)), np.nan)
        y[:, j] = np.asarray(s.targets)[:, 0]
        texts += s.texts
        blocks.append(y)
        files += s.files
    return RegressionData(
        texts=texts, targets=np.concatenate(blocks), output_names=list(ds.EI_EMOTIONS)
    ), files


def _ei_reg_encoded(
    data_dir: Path, split: str, cache: FeatureCache | None, progress: bool
) -> tuple[RegressionData, list[Path]]:
    """EI-reg with each emotion file encoded separately (one cache entry per file), then concatenated."""
    from nlp_service.inference.encoder import Encoded

    data, files = _ei_reg(data_dir, split)
    if cache is None:
        return data, files
    parts = [cache.encode(ds.ei_reg(data_dir, e, split).texts, progress=progress) for e in ds.EI_EMOTIONS]
    data.encoded = Encoded.concat(parts)
    return data, files


class _HeadArgs(TypedDict):
    """The arguments ``train_head`` and ``finetune_and_train`` share for one default task."""

    spec: TaskSpec
    train: Data
    val: Data
    registry: ModelRegistry
    params: TrainParams
    evals: dict[str, Data]
    data_info: dict[str, Any]
    progress: bool
    card_notes: str


def load_default_splits(
    task: str, data_dir: Path, cache: FeatureCache | None, seed: int, progress: bool
) -> tuple[Data, Data, dict[str, Data], list[Path], str]:
    """(train, val, held-out evals, files, notes) of one default task, encoded (unless ``cache`` is None)."""
    enc = _encoded
    if task in ("sentiment", "emotion4"):
        name = "sentiment" if task == "sentiment" else "emotion"
        labels = TASKS[task].labels
        assert labels is not None
        parts = {split: _tweeteval(data_dir, name, split, labels) for split in ("train", "val", "test")}
        files = [f for _, fs in parts.values() for f in fs]
        train, val, test = (enc(parts[s][0], cache, progress) for s in ("train", "val", "test"))
        notes = f"Source: `tweeteval_{name}` (train / val / test splits).\n"
        return _dedupe(train), val, {"test": test}, files, notes
    if task == "emotion":
        parts2 = {split: _goemotions(data_dir, split) for split in ("train", "dev", "test")}
        files = [f for _, fs in parts2.values() for f in fs[:1]]
        train, val, test = (enc(parts2[s][0], cache, progress) for s in ("train", "dev", "test"))
        notes = "Source: `goemotions` (train / dev / test; thresholds tuned on dev).\n"
        return _dedupe(train), val, {"test": test}, files, notes
    if task == "valence":
        parts3 = {split: _emobank(data_dir, split) for split in ("train", "dev", "test")}
        files = parts3["train"][1]
        train, val, test = (enc(parts3[s][0], cache, progress) for s in ("train", "dev", "test"))
        notes = (
            "Source: `emobank` (official train / dev / test split column). Targets rescaled linearly from"
            " the 1-5 ratings: valence = (V - 3) / 2 in [-1, 1], arousal = (A - 1) / 4 in [0, 1].\n"
        )
        return _dedupe(train), val, {"test": test}, files, notes
    if task == "intensity":
        train_all, files = _ei_reg_encoded(data_dir, "train", cache, progress)
        dev, dev_files = _ei_reg_encoded(data_dir, "dev", cache, progress)
        train, val = split_validation(_dedupe(train_all), 0.1, seed)
        notes = (
            "Source: `semeval2018_ei_reg` train files of anger, fear, joy and sadness; one 4-output"
            " regressor where each tweet supervises only its own emotion's output (masked MSE). Early"
            " stopping on a seeded 10% split of train; the `dev` metrics are the official dev split (the"
            " official test set is not used).\n"
        )
        return train, val, {"dev": dev}, files + dev_files, notes
    raise TrainingDataError(f"no default recipe for task {task!r}; known: {', '.join(ORDER)}")


def train_defaults(
    *,
    data_dir: Path | None,
    registry: ModelRegistry,
    cache: FeatureCache,
    seed: int = 0,
    only: list[str] | None = None,
    progress: bool = True,
    on_done: Callable[[str, TrainOutcome], None] | None = None,
    finetune: FinetuneParams | None = None,
    base_encoder: str | None = None,
    threads: int | None = None,
) -> dict[str, TrainOutcome]:
    """Train every default head (or ``only`` some), write them as new versions and promote them.

    With ``finetune``, each task first fine-tunes ``base_encoder`` (a new ``encoders/v<n>`` per task); those
    heads are only promoted when the task has no version yet (they need ``NLP_ENCODER`` set to their encoder).
    """
    data_dir = Path(data_dir) if data_dir else ds.DEFAULT_DATA_DIR
    if not data_dir.is_dir():
        raise TrainingDataError(f"datasets folder not found: {data_dir}")
    tasks = only or list(ORDER)
    unknown = [t for t in tasks if t not in ORDER]
    if unknown:
        raise TrainingDataError(f"unknown default task(s) {', '.join(unknown)}; known: {', '.join(ORDER)}")
    results: dict[str, TrainOutcome] = {}
    for task in tasks:
        spec = TASKS[task]
        loading_cache = None if finetune is not None else cache
        train, val, evals, files, notes = load_default_splits(task, data_dir, loading_cache, seed, progress)
        info = fingerprint(files)
        info["dropped_duplicates"] = train.dropped_duplicates
        command = COMMAND + (f" --only {task}" if only else "") + (f" --seed {seed}" if seed else "")
        common = _HeadArgs(
            spec=spec,
            train=train,
            val=val,
            registry=registry,
            params=replace(spec.params, seed=seed),
            evals=evals,
            data_info=info,
            progress=progress,
            card_notes=notes,
        )
        if finetune is not None:
            from training.finetune import finetune_and_train

            if base_encoder is None:
                raise TrainingDataError("fine-tuning needs a base encoder")
            p = finetune
            command += f" --finetune --ft-epochs {p.epochs} --ft-lr {p.lr} --ft-batch-size {p.batch_size}"
            command += f" --ft-max-length {p.max_length}"
            # Not promoted over an existing version: the service runs one encoder for every head.
            outcome, _ = finetune_and_train(
                **common,
                promote=None,
                command=command,
                base_encoder=base_encoder,
                ft_params=replace(finetune, seed=seed),
                cache_dir=cache.cache_dir,
                threads=threads,
            )
        else:
            outcome = train_head(**common, promote=True, cache=cache, command=command)
        results[task] = outcome
        if on_done is not None:
            on_done(task, outcome)
    return results
