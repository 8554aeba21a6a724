"""False alerts on null data per sensitivity preset, through the detector's own firing rules.

Null series: seeded daily streams with weekly seasonality and no event (``topic_streams``), Poisson and
overdispersed (gamma-Poisson, each day's rate drawn around the seasonal mean). The detector is replayed as it
runs: after ``history`` days, one scan per day of the newest completed bucket (``rules.scan_series`` with
``scan=1``: spikes, drops and recent level shifts at the preset's thresholds); a firing the day after another
of the same kind and direction continues one alert. Reported: alerts per 1,000 series-days.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from nlp_service.anomaly.rules import scan_series
from nlp_service.anomaly.sensitivity import SENSITIVITIES, thresholds
from nlp_service.anomaly.series import SeriesSet
from nlp_service.anomaly.synthetic import topic_streams
from nlp_service.config import Settings

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def null_series(n_series: int, n: int, seed: int, *, overdispersion: float) -> list[np.ndarray]:
    """Event-free daily counts; ``overdispersion`` k > 0 draws each day's rate from Gamma(k, mean / k)."""
    rng = np.random.default_rng(seed)
    out = []
    for s in topic_streams(n_series, n, seed=seed, n_spikes=0, base_range=(5.0, 200.0)):
        mean = np.maximum(np.asarray(s.series.values, dtype=float), 0.0)
        if overdispersion > 0:
            mean = rng.gamma(overdispersion, np.maximum(mean, 1e-9) / overdispersion)
            mean = rng.poisson(mean).astype(float)
        out.append(mean)
    return out


def alerts_per_1000_series_days(
    series: list[np.ndarray], settings: Settings, sensitivity: str, history: int
) -> float:
    """Replay daily scans over each series after ``history`` days; alerts per 1,000 series-days scanned."""
    th = thresholds(settings, sensitivity)
    alerts = days = 0
    for values in series:
        last: set[tuple[str, str]] = set()
        for end in range(history, values.size + 1):
            ss = SeriesSet("day", START, end, {("t", "all", "all"): values[:end]})
            firings = scan_series(("t", "all", "all"), values[:end], ss, settings, scan=1, th=th)
            now: set[tuple[str, str]] = {(str(f.kind), str(f.direction)) for f in firings}
            alerts += len(now - last)
            last = now
            days += 1
    return 1000.0 * alerts / max(days, 1)


def evaluate_null(n_series: int = 40, n: int = 176, history: int = 56, seed: int = 0) -> dict[str, float]:
    """``null.<preset>.poisson`` and ``null.<preset>.overdispersed``: alerts per 1,000 series-days."""
    settings = Settings()
    poisson = null_series(n_series, n, seed, overdispersion=0.0)
    overdispersed = null_series(n_series, n, seed + 1, overdispersion=20.0)
    out: dict[str, float] = {"null.series_days": float(n_series * (n - history + 1))}
    for preset in SENSITIVITIES:
        out[f"null.{preset}.poisson"] = alerts_per_1000_series_days(poisson, settings, preset, history)
        out[f"null.{preset}.overdispersed"] = alerts_per_1000_series_days(
            overdispersed, settings, preset, history
        )
    return out


if __name__ == "__main__":
    import time

    t0 = time.perf_counter()
    print(evaluate_null(), f"{time.perf_counter() - t0:.0f} s")
