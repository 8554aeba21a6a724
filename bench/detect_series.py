"""POST /v1/detect/series at the largest size the API accepts: time per request and server RSS growth.

    python bench/detect_series.py --json OUT.json

Starts the API (embedded default) on a free port, then posts series of ``MAX_SERIES_POINTS`` hourly counts:
one with a level shift, and pure noise (the costliest case for PELT, which then prunes little). Keys:
``seconds_max`` (slowest request, bar <= 10 s) and ``rss_growth_mb`` (sampled server RSS peak during the
requests minus RSS before them, bar <= 300 MB).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, write_json  # noqa: E402
from bench.server import PeakRss, free_port, start_server  # noqa: E402
from nlp_service.anomaly.schemas import MAX_SERIES_POINTS  # noqa: E402

BARS = {"seconds_max": 10.0, "rss_growth_mb": 300.0}


def hourly_series(n: int, *, shift: bool, seed: int) -> dict[str, object]:
    """A request body: ``n`` daily-seasonal Poisson counts per hour, optionally 60% higher from the middle."""
    rng = np.random.default_rng(seed)
    lam = 20 + 5 * np.sin(np.arange(n) * 2 * np.pi / 24)
    if shift:
        lam[n // 2 :] *= 1.6
    start = 1_700_000_000 // 3600 * 3600
    return {
        "timestamps": [start + 3600 * i for i in range(n)],
        "values": rng.poisson(lam).astype(float).tolist(),
        "bucket_seconds": 3600,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=MAX_SERIES_POINTS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    bodies = {"level-shift": hourly_series(args.points, shift=True, seed=1)}
    bodies["noise-only"] = hourly_series(args.points, shift=False, seed=2)
    port = free_port()
    rows: list[tuple[str, str, str, str]] = []
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, {}, Path(tmp))
        try:
            rss = PeakRss(server.pid)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                for name, body in bodies.items():
                    t0 = time.perf_counter()
                    response = client.post("/v1/detect/series", json=body)
                    seconds[name] = time.perf_counter() - t0
                    response.raise_for_status()
                    found = len(response.json()["change_points"])
                    rows.append((f"{name}: seconds", f"{seconds[name]:.2f}", "", f"{found} change points"))
            growth_mb = rss.stop(high_water_mark=False) - rss.start_mb
        finally:
            server.terminate()
            server.wait(30)
    metrics = {
        "points": float(args.points),
        "seconds_max": max(seconds.values()),
        "rss_growth_mb": growth_mb,
    }
    rows += [
        ("seconds_max", f"{metrics['seconds_max']:.2f}", f"<= {BARS['seconds_max']:g}", ""),
        ("rss_growth_mb", f"{growth_mb:.1f}", f"<= {BARS['rss_growth_mb']:g}", f"from {rss.start_mb:.0f} MB"),
    ]
    print_table(f"POST /v1/detect/series, {args.points} points", rows)
    write_json(args.json, metrics)
    return metrics


if __name__ == "__main__":
    main()
