"""Pure anomaly detectors for topic-volume series (no database, no web)."""

from nlp_service.anomaly.detectors.base import ChangePoint, Detector, Series, Spike
from nlp_service.anomaly.detectors.changepoint import PeltChangePointDetector
from nlp_service.anomaly.detectors.combined import BATCH, DetectionResult, Fitted, detect_many, detect_series
from nlp_service.anomaly.detectors.episodes import Episode, escalations, merge_episodes, refractory_alerts
from nlp_service.anomaly.detectors.seasonal import SeasonalSpikeDetector

__all__ = [
    "BATCH",
    "ChangePoint",
    "DetectionResult",
    "Detector",
    "Episode",
    "Fitted",
    "PeltChangePointDetector",
    "SeasonalSpikeDetector",
    "Series",
    "Spike",
    "detect_many",
    "detect_series",
    "escalations",
    "merge_episodes",
    "refractory_alerts",
]
