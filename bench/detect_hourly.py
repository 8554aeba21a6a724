"""What the windows of hours cost the hourly scan.

    python bench/detect_hourly.py --json OUT.json [--series 1000] [--days 28]

Generates ``--series`` seeded hourly Poisson streams of ``--days`` days (weekly and daily cycle, base 1-30 an
hour, no events) and times the service's hourly scan path, ``rules.scan_many`` over a ``SeriesSet`` in
batches of ``BATCH`` (the newest 14 days checked), with ``NLP_ALERT_HOUR_WINDOWS`` off (``[]``) and on (the
default), and on with the joint test of the windows (the same streams as segment series of 5 regions with
their totals, the candidates collected and tested: ``anomaly.joint``), without and with the test against
each region's profile (``NLP_ALERT_JOINT_PROFILE_WINDOWS``, ``detectors.profile``), twice each, in one process
(compare the ratios: speed varies between runs).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, write_json  # noqa: E402
from nlp_service.anomaly import joint, rules  # noqa: E402
from nlp_service.anomaly.detectors import BATCH  # noqa: E402
from nlp_service.anomaly.sensitivity import thresholds  # noqa: E402
from nlp_service.anomaly.series import SeriesSet  # noqa: E402
from nlp_service.anomaly.synthetic import EPOCH_MONDAY, seasonal_mean  # noqa: E402
from nlp_service.config import Settings  # noqa: E402
from nlp_service.topics.tables import ALL_TOPICS  # noqa: E402

SCAN_HOURS = 14 * 24


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    hours = args.days * 24
    counts = {}
    for i in range(args.series):
        _, mean = seasonal_mean(hours, base=float(rng.uniform(1.0, 30.0)), bucket_seconds=3600)
        counts[(f"t{i}", "all", "all")] = rng.poisson(mean).astype(np.float64)
    start = datetime.fromtimestamp(EPOCH_MONDAY, UTC)
    ss = SeriesSet("hour", start, hours, counts)
    by_region = {(f"t{i // 5}", "region", f"r{i % 5}"): v for i, v in enumerate(counts.values())}
    for r in range(5):  # each region's total (every comment there): the profile's shape
        by_region[(ALL_TOPICS, "region", f"r{r}")] = sum(v for k, v in by_region.items() if k[2] == f"r{r}")
    ss_region = SeriesSet("hour", start, hours, by_region)

    def scan(settings: Settings, series: SeriesSet) -> tuple[float, float, int]:
        t0, c0 = time.perf_counter(), time.process_time()
        firings = 0
        keys = [k for k in series.counts if k[0] != ALL_TOPICS]
        found: list[joint.Candidate] | None = [] if series is ss_region else None
        for at in range(0, len(keys), BATCH):
            items = [(k, series.counts[k]) for k in keys[at : at + BATCH]]
            scan_hours = min(SCAN_HOURS, hours)
            firings += len(rules.scan_many(items, series, settings, scan=scan_hours, joint_candidates=found))
        if found is not None:  # as flows.scan does
            th = thresholds(settings)
            found.extend(rules.profile_candidates(series, settings, scan=min(SCAN_HOURS, hours), th=th))
            firings += len(rules.joint_firings(found, series, settings, th))
        return time.perf_counter() - t0, time.process_time() - c0, firings

    runs: dict[str, list[tuple[float, float, int]]] = {
        "off": [],
        "on": [],
        "on + joint": [],
        "on + joint + profile": [],
    }
    for _ in range(2):
        runs["off"].append(scan(Settings(alert_hour_windows=[]), ss))
        runs["on"].append(scan(Settings(), ss))
        runs["on + joint"].append(scan(Settings(alert_joint_profile_windows=[]), ss_region))
        runs["on + joint + profile"].append(scan(Settings(), ss_region))
    best = {name: min(r, key=lambda x: x[1]) for name, r in runs.items()}
    metrics = {
        "hourly_scan_off_s": best["off"][0],
        "hourly_scan_off_cpu_s": best["off"][1],
        "hourly_scan_on_s": best["on"][0],
        "hourly_scan_on_cpu_s": best["on"][1],
        "cpu_ratio_on_off": best["on"][1] / max(best["off"][1], 1e-9),
        "hourly_scan_joint_cpu_s": best["on + joint"][1],
        "cpu_ratio_joint_off": best["on + joint"][1] / max(best["off"][1], 1e-9),
        "hourly_scan_profile_cpu_s": best["on + joint + profile"][1],
        "cpu_ratio_profile_off": best["on + joint + profile"][1] / max(best["off"][1], 1e-9),
        "series": float(args.series),
        "hours_per_series": float(hours),
    }
    rows = [
        (f"scan, windows {name} (wall s / CPU s)", f"{w:.2f} / {c:.2f}", "", f"{n} firings")
        for name, (w, c, n) in best.items()
    ]
    rows.append(("CPU ratio on / off", f"{metrics['cpu_ratio_on_off']:.2f}", "", "best of two runs each"))
    rows.append(("CPU ratio on + joint / off", f"{metrics['cpu_ratio_joint_off']:.2f}", "", ""))
    rows.append(("CPU ratio on + joint + profile / off", f"{metrics['cpu_ratio_profile_off']:.2f}", "", ""))
    print_table(f"hourly scan over {args.series} series x {hours} hourly buckets", rows)
    write_json(args.json, metrics)
    return metrics


if __name__ == "__main__":
    main()
