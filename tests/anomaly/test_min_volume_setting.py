"""NLP_ALERT_MIN_VOLUME reaches the service spike detector (its minimum-volume guard), both bucket sizes."""

from __future__ import annotations

import pytest

from nlp_service.anomaly import rules
from nlp_service.config import Settings


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_the_min_volume_setting_is_the_spike_guard(bucket: str) -> None:
    assert rules.spike_detector(Settings(alert_min_volume=3), bucket).min_count == 3
    assert rules.spike_detector(Settings(alert_min_volume=25), bucket).min_count == 25
