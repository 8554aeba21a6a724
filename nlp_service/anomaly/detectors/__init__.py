"""Pure anomaly detectors for topic-volume series (no database, no web)."""

from nlp_service.anomaly.detectors.base import ChangePoint, Detector, Series, Spike
from nlp_service.anomaly.detectors.changepoint import PeltChangePointDetector
from nlp_service.anomaly.detectors.combined import DetectionResult, detect_series
from nlp_service.anomaly.detectors.episodes import Episode, escalations, merge_episodes, refractory_alerts
from nlp_service.anomaly.detectors.seasonal import SeasonalSpikeDetector

__all__ = [
    "ChangePoint",
    "DetectionResult",
    "Detector",
    "Episode",
    "PeltChangePointDetector",
    "SeasonalSpikeDetector",
    "Series",
    "Spike",
    "detect_series",
    "escalations",
    "merge_episodes",
    "refractory_alerts",
]
