"""The trainable tasks: head kind, implied label set, output scale and default hyper-parameters."""

from __future__ import annotations

from dataclasses import dataclass, field

from nlp_service.inference.heads import FeatureSpec
from training.trainer import TrainParams

GOEMOTIONS_LABELS = tuple(
    "admiration amusement anger annoyance approval caring confusion curiosity desire disappointment"
    " disapproval disgust embarrassment excitement fear gratitude grief joy love nervousness optimism pride"
    " realization relief remorse sadness surprise neutral".split()
)

RICH_FEATURES = FeatureSpec(layers=(1, 2, 3, 4, 5, 6))


@dataclass(frozen=True)
class TaskSpec:
    """How a task is trained. ``labels`` is the implied label set (None: taken from the data / columns)."""

    name: str
    kind: str
    description: str
    labels: tuple[str, ...] | None = None
    output_range: tuple[tuple[float, float], ...] | None = None
    features: FeatureSpec = RICH_FEATURES
    params: TrainParams = field(default_factory=TrainParams)


TASKS: dict[str, TaskSpec] = {
    "sentiment": TaskSpec(
        name="sentiment",
        kind="softmax",
        description="3-class sentiment (probabilities of negative, neutral, positive)",
        labels=("negative", "neutral", "positive"),
        params=TrainParams(
            hidden=[256],
            dropout=0.5,
            input_dropout=0.2,
            weight_decay=0.05,
            lr=5e-4,
            epochs=20,
            patience=5,
            batch_size=256,
            balanced=True,
            selection="macro_recall",
        ),
    ),  # fmt: skip
    "emotion": TaskSpec(
        name="emotion",
        kind="sigmoid",
        description="multi-label emotions (independent probabilities; per-label thresholds tuned on dev)",
        labels=GOEMOTIONS_LABELS,
        params=TrainParams(
            hidden=[256],
            dropout=0.5,
            input_dropout=0.2,
            weight_decay=0.05,
            lr=5e-4,
            epochs=20,
            patience=5,
            batch_size=256,
            selection="macro_f1",
        ),
    ),  # fmt: skip
    "emotion4": TaskSpec(
        name="emotion4",
        kind="softmax",
        description="4-class tweet emotion (probabilities of anger, joy, optimism, sadness)",
        labels=("anger", "joy", "optimism", "sadness"),
        params=TrainParams(
            hidden=[128],
            dropout=0.5,
            input_dropout=0.2,
            weight_decay=0.05,
            lr=5e-4,
            epochs=40,
            patience=8,
            balanced=True,
            selection="macro_f1",
        ),
    ),  # fmt: skip
    "intensity": TaskSpec(
        name="intensity",
        kind="regression",
        description="emotion intensity in [0, 1] (one output per emotion; each example supervises its own)",
        output_range=((0.0, 1.0),) * 4,
        params=TrainParams(
            hidden=[128],
            dropout=0.5,
            input_dropout=0.2,
            weight_decay=0.05,
            lr=5e-4,
            epochs=40,
            patience=8,
            selection="pearson",
        ),
    ),  # fmt: skip
    "valence": TaskSpec(
        name="valence",
        kind="regression",
        description="valence in [-1, 1] and arousal in [0, 1]",
        labels=("valence", "arousal"),
        output_range=((-1.0, 1.0), (0.0, 1.0)),
        params=TrainParams(
            hidden=[128],
            dropout=0.5,
            input_dropout=0.2,
            weight_decay=0.05,
            lr=5e-4,
            epochs=40,
            patience=8,
            selection="pearson",
        ),
    ),  # fmt: skip
}
