"""Sensitivity presets: how strict every firing's test is, globally (``NLP_ALERT_SENSITIVITY``) and per
topic (a taxonomy topic's ``sensitivity``).

Each preset sets the one p-value threshold that spikes, drops and level shifts all pass, and their minimum
effect sizes (a spike's or drop's ratio and excess over the expectation, a shift's relative change of level).
Their false-alert rates on null data are measured by ``python -m evaluation anomaly`` (``null.*`` keys) and
stated in the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from nlp_service.config import AlertSensitivity as Sensitivity
from nlp_service.config import Settings

SENSITIVITIES: tuple[Sensitivity, ...] = get_args(Sensitivity)


@dataclass(frozen=True)
class Thresholds:
    """What a firing must pass: ``p_value <= p_threshold`` and the minimum effect of its kind."""

    p_threshold: float
    min_ratio: float  # spikes and drops: observed / expected (or its inverse) at least this
    min_excess: float  # spikes and drops: |observed - expected| at least this many comments
    min_relative_change: float  # level shifts: |after - before| / max(after, before) at least this


PRESETS: dict[str, Thresholds] = {
    "low": Thresholds(p_threshold=1e-6, min_ratio=2.0, min_excess=8.0, min_relative_change=0.35),
    "medium": Thresholds(p_threshold=1e-4, min_ratio=1.5, min_excess=5.0, min_relative_change=0.25),
    "high": Thresholds(p_threshold=1e-3, min_ratio=1.3, min_excess=3.0, min_relative_change=0.2),
}


def thresholds(settings: Settings, topic: str | None = None) -> Thresholds:
    """The thresholds of a topic's sensitivity (else ``NLP_ALERT_SENSITIVITY``); ``NLP_ALERT_P_THRESHOLD``,
    where set, replaces the preset's p-value threshold."""
    preset = PRESETS.get(topic or "") or PRESETS[settings.alert_sensitivity]
    if settings.alert_p_threshold is None:
        return preset
    return Thresholds(
        settings.alert_p_threshold, preset.min_ratio, preset.min_excess, preset.min_relative_change
    )
