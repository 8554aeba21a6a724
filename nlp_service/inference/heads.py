"""Task heads: small numpy networks reading features from one shared :class:`Encoded` batch.

A head artifact is a directory ``models/<task>/<version>/`` holding

- ``weights.safetensors``: ``input_mean``/``input_scale`` (feature standardisation, float32) and
  ``dense.<i>.weight``/``dense.<i>.bias`` per dense layer (float16 on disk by default, computed in
  float32; ReLU between layers, none after the last one);
- ``config.json``: task, kind (``softmax`` | ``sigmoid`` | ``regression``), labels, feature spec (which pooled
  layers and/or the search embedding are concatenated), output rescaling, per-label thresholds (sigmoid), the
  encoder it expects (name + weights sha256), training arguments and the data fingerprint;
- ``metrics.json`` and ``MODEL_CARD.md``.

Inference is plain numpy (float32), so a head needs no torch at serving time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from safetensors.numpy import load_file, save_file

from nlp_service.inference.encoder import Encoded

HeadKind = Literal["softmax", "sigmoid", "regression"]
KINDS: tuple[str, ...] = ("softmax", "sigmoid", "regression")
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CARD_FILE = "MODEL_CARD.md"
FORMAT_VERSION = 1


class HeadFormatError(ValueError):
    """A head artifact is missing a file or its config/weights are inconsistent."""


@dataclass(frozen=True)
class FeatureSpec:
    """Which encoder outputs a head reads: pooled ``layers`` (0 = embedding layer) then, optionally, the
    normalised search ``embedding``; all concatenated in that order."""

    layers: tuple[int, ...] = (6,)
    embedding: bool = False

    def dim(self, hidden: int) -> int:
        return hidden * (len(self.layers) + int(self.embedding))

    def extract(self, encoded: Encoded) -> np.ndarray:
        """The (n, dim) float32 feature matrix."""
        n_layers = encoded.layers.shape[1]
        bad = [i for i in self.layers if not 0 <= i < n_layers]
        if bad:
            raise HeadFormatError(
                f"feature layers {bad} out of range: the encoder has {n_layers} pooled layers"
            )
        parts = [encoded.layers[:, list(self.layers)].reshape(len(encoded), -1)] if self.layers else []
        if self.embedding:
            parts.append(encoded.embedding)
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        return {"layers": list(self.layers), "embedding": self.embedding}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(
            layers=tuple(int(i) for i in data.get("layers", [])), embedding=bool(data.get("embedding"))
        )


@dataclass
class HeadConfig:
    """Everything in ``config.json``.

    For regression heads the network output ``z`` becomes ``z * output_scale + output_offset`` and is then
    clipped to ``output_range`` (per output, ``[low, high]``) when given.
    """

    task: str
    version: str
    kind: str
    labels: list[str]
    features: FeatureSpec
    encoder_name: str
    encoder_sha256: str
    hidden: list[int] = field(default_factory=list)
    thresholds: list[float] | None = None
    output_scale: list[float] | None = None
    output_offset: list[float] | None = None
    output_range: list[list[float]] | None = None
    label_descriptions: dict[str, str] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise HeadFormatError(f"unknown head kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if not self.labels:
            raise HeadFormatError("a head needs at least one label/output")
        for name, value in (("thresholds", self.thresholds), ("output_scale", self.output_scale)):
            if value is not None and len(value) != len(self.labels):
                raise HeadFormatError(f"{name} has {len(value)} values for {len(self.labels)} labels")
        if self.thresholds is not None and self.kind != "sigmoid":
            raise HeadFormatError("thresholds only apply to sigmoid heads")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = self.features.to_dict()
        data["format_version"] = FORMAT_VERSION
        data["encoder"] = {"name": data.pop("encoder_name"), "sha256": data.pop("encoder_sha256")}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadConfig:
        data = dict(data)
        data.pop("format_version", None)
        encoder = data.pop("encoder", {})
        try:
            features = FeatureSpec.from_dict(data.pop("features"))
            name, sha = encoder["name"], encoder["sha256"]
            return cls(**data, features=features, encoder_name=name, encoder_sha256=sha)
        except (KeyError, TypeError) as exc:
            raise HeadFormatError(f"invalid head config: {exc}") from exc


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


class Head:
    """A loaded head: ``predict(encoded)`` gives (n, len(labels)) probabilities or final-scale values."""

    def __init__(self, config: HeadConfig, weights: dict[str, np.ndarray]) -> None:
        self.config = config
        try:
            self._mean = weights["input_mean"].astype(np.float32)
            self._scale = weights["input_scale"].astype(np.float32)
            n_dense = len(config.hidden) + 1
            self._dense = [
                (
                    weights[f"dense.{i}.weight"].astype(np.float32).T.copy(),
                    weights[f"dense.{i}.bias"].astype(np.float32),
                )
                for i in range(n_dense)
            ]
        except KeyError as exc:
            raise HeadFormatError(f"head weights lack tensor {exc}") from exc
        if self._dense[-1][0].shape[1] != len(config.labels):
            raise HeadFormatError(
                f"last layer has {self._dense[-1][0].shape[1]} outputs for {len(config.labels)} labels"
            )
        if self._dense[0][0].shape[0] != self._mean.shape[0]:
            raise HeadFormatError("input standardisation and first layer disagree on the feature size")
        self.weights = weights

    task = property(lambda self: self.config.task)
    version = property(lambda self: self.config.version)
    kind = property(lambda self: self.config.kind)
    labels = property(lambda self: list(self.config.labels))
    thresholds = property(
        lambda self: None if self.config.thresholds is None else list(self.config.thresholds)
    )
    encoder_sha256 = property(lambda self: self.config.encoder_sha256)
    features = property(lambda self: self.config.features)

    @property
    def num_parameters(self) -> int:
        return int(sum(w.size + b.size for w, b in self._dense))

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw network outputs for a (n, dim) feature matrix."""
        h = (np.asarray(x, dtype=np.float32) - self._mean) / self._scale
        for i, (w, b) in enumerate(self._dense):
            h = h @ w + b
            if i < len(self._dense) - 1:
                np.maximum(h, 0.0, out=h)
        return h

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (softmax/sigmoid) or final-scale regression values from a feature matrix."""
        z = self.logits(x)
        if self.kind == "softmax":
            return _softmax(z)
        if self.kind == "sigmoid":
            return _sigmoid(z)
        cfg = self.config
        if cfg.output_scale is not None:
            z = z * np.asarray(cfg.output_scale, dtype=np.float32)
        if cfg.output_offset is not None:
            z = z + np.asarray(cfg.output_offset, dtype=np.float32)
        if cfg.output_range is not None:
            lo, hi = np.asarray(cfg.output_range, dtype=np.float32).T
            z = np.clip(z, lo, hi)
        return z

    def predict(self, encoded: Encoded) -> np.ndarray:
        """(n, len(labels)) float32, columns in ``labels`` order."""
        if len(encoded) == 0:
            return np.zeros((0, len(self.config.labels)), dtype=np.float32)
        return self.predict_features(self.features.extract(encoded)).astype(np.float32, copy=False)

    def decide(self, scores: np.ndarray) -> list[list[str]]:
        """Labels per row: argmax (softmax), over threshold most likely first (sigmoid, default 0.5); [] for
        regression. The same rules decode the service's results (:mod:`nlp_service.inference.results`)."""
        labels = self.config.labels
        if self.kind == "softmax":
            return [[labels[top_index(row)]] for row in scores]
        if self.kind == "sigmoid":
            return [[labels[j] for j in indexes_over(row, self.thresholds)] for row in scores]
        return [[] for _ in range(len(scores))]


def top_index(probs: np.ndarray) -> int:
    """The decision of a softmax head for one row: its most probable label's index."""
    return int(np.argmax(probs))


def indexes_over(probs: np.ndarray, thresholds: list[float] | None) -> list[int]:
    """The decision of a sigmoid head for one row: indexes at or over their threshold (0.5 without
    thresholds), most likely first."""
    thr = thresholds if thresholds is not None else [0.5] * len(probs)
    return [int(i) for i in np.argsort(-probs) if probs[i] >= thr[i]]


def save_head(
    path: Path,
    config: HeadConfig,
    weights: dict[str, np.ndarray],
    *,
    metrics: dict[str, Any] | None = None,
    card: str | None = None,
    dense_dtype: type = np.float16,
) -> Head:
    """Write a head artifact directory (created if needed) and return the head as loaded back from disk.

    Dense layers are stored as ``dense_dtype`` (float16 halves the size; predictions are computed in float32).
    """
    Head(config, weights)  # validates shapes before anything is written
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {
        k: np.ascontiguousarray(v, dtype=dense_dtype if k.startswith("dense.") else np.float32)
        for k, v in weights.items()
    }
    save_file(tensors, str(path / WEIGHTS_FILE))
    (path / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    (path / METRICS_FILE).write_text(json.dumps(metrics or {}, indent=2, sort_keys=True) + "\n")
    if card is not None:
        (path / CARD_FILE).write_text(card)
    return load_head(path)


def load_head_config(path: Path) -> HeadConfig:
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise HeadFormatError(f"no {CONFIG_FILE} in head directory {path}")
    return HeadConfig.from_dict(json.loads(file.read_text()))


def load_head(path: Path | str) -> Head:
    """Load a head artifact directory."""
    path = Path(path)
    config = load_head_config(path)
    file = path / WEIGHTS_FILE
    if not file.is_file():
        raise HeadFormatError(f"no {WEIGHTS_FILE} in head directory {path}")
    return Head(config, load_file(str(file)))


def load_metrics(path: Path | str) -> dict[str, Any]:
    file = Path(path) / METRICS_FILE
    return json.loads(file.read_text()) if file.is_file() else {}
