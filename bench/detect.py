"""Detection speed over many topic x segment series.

    python bench/detect.py --json OUT.json [--series 10000] [--days 365] [--skip-single]

Generates ``--series`` seeded Poisson streams of ``--days`` daily buckets (weekly seasonality, random
spikes/shifts in a third of them), then times, in one process:

- ``detect_10k_s``: ``detect_many`` (streaming spikes for every bucket, PELT change points, episodes),
  vectorised across batches of series on one grid, as the service's scan runs it (bar <= 5 s);
- ``service_10k_s``: the service's scan path, ``rules.scan_many`` over a ``SeriesSet`` of the streams in
  batches of ``BATCH`` (the default settings' daily detectors, significance of recent shifts, firings, the
  joint test's candidates and test);
- ``single_10k_s``: ``detect_series`` one series at a time (the path before batching), unless skipped.

``*_cpu_s`` are the process CPU times (steadier when other jobs share the cores); ``rss_growth_mb`` is the
peak resident memory over the batched run minus that before it. Results of the batched and one-at-a-time
runs must agree (same change points, spikes and episodes).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, write_json  # noqa: E402
from nlp_service.anomaly import joint, rules  # noqa: E402
from nlp_service.anomaly.detectors import BATCH, Series, detect_many, detect_series  # noqa: E402
from nlp_service.anomaly.sensitivity import thresholds  # noqa: E402
from nlp_service.anomaly.series import SeriesSet  # noqa: E402
from nlp_service.anomaly.synthetic import generate, random_events  # noqa: E402
from nlp_service.config import Settings  # noqa: E402

BAR_S = 5.0


def _timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-single", action="store_true", help="do not time detect_series one by one")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    streams = []
    for i in range(args.series):
        base = float(np.exp(rng.uniform(np.log(1.0), np.log(500.0))))
        events = random_events(args.days, rng, n_spikes=2, n_shifts=1) if i % 3 == 0 else ()
        streams.append(generate(args.days, base=base, events=events, seed=rng).series)
    gen_s = time.perf_counter() - t0

    def counts(results: list[tuple[int, int, int]]) -> tuple[int, int, int]:
        return tuple(int(x) for x in np.sum(results, axis=0)) if results else (0, 0, 0)  # type: ignore[return-value]

    def batched() -> tuple[int, int, int]:
        series = [Series.from_arrays(s.timestamps, s.values, s.bucket_seconds) for s in streams]
        return counts([(len(f.result.change_points), len(f.result.spikes), len(f.result.episodes))
                       for _, f in detect_many(series)])  # fmt: skip

    def single() -> tuple[int, int, int]:
        out = []
        for s in streams:
            res = detect_series(Series.from_arrays(s.timestamps, s.values, s.bucket_seconds))
            out.append((len(res.change_points), len(res.spikes), len(res.episodes)))
        return counts(out)

    settings = Settings()
    start = datetime.fromtimestamp(int(streams[0].timestamps[0]), UTC) if streams else datetime.now(UTC)
    by_key = {("t", "region", f"r{i}"): s.values for i, s in enumerate(streams)}
    ss = SeriesSet("day", start, args.days, by_key)

    def service() -> int:
        keys = list(ss.counts)
        firings = 0
        candidates: list[joint.Candidate] = []  # as the service's daily scan collects them
        for at in range(0, len(keys), BATCH):
            items = [(k, ss.counts[k]) for k in keys[at : at + BATCH]]
            scan = settings.alert_rescan_buckets
            firings += len(rules.scan_many(items, ss, settings, scan=scan, joint_candidates=candidates))
        return firings + len(rules.joint_firings(candidates, ss, settings, thresholds(settings)))

    rss0 = _rss_mb()
    batch_s, batch_cpu, found = _timed(batched)
    rss_growth = _rss_mb() - rss0
    service_s, service_cpu, n_firings = _timed(service)
    scale = 10_000 / max(args.series, 1)
    metrics = {
        "detect_10k_s": batch_s * scale,
        "detect_10k_cpu_s": batch_cpu * scale,
        "service_10k_s": service_s * scale,
        "service_10k_cpu_s": service_cpu * scale,
        "rss_growth_mb": rss_growth,
        "detect_ms_per_series": 1000 * batch_s / max(args.series, 1),
        "series": float(args.series),
        "buckets_per_series": float(args.days),
    }
    rows = [
        ("detect_10k_s (detect_many, batches)", f"{metrics['detect_10k_s']:.2f}", f"<= {BAR_S:g}", ""),
        ("detect_10k_cpu_s (process CPU time)", f"{metrics['detect_10k_cpu_s']:.2f}", "", ""),
        ("service_10k_s (rules.scan_many)", f"{metrics['service_10k_s']:.2f}", "", f"{n_firings} firings"),
        ("service_10k_cpu_s", f"{metrics['service_10k_cpu_s']:.2f}", "", ""),
        ("rss_growth_mb (peak, batched run)", f"{rss_growth:.1f}", "", ""),
        ("generation s (not timed)", f"{gen_s:.2f}", "", ""),
        ("change points / spikes / episodes", " / ".join(map(str, found)), "", ""),  # type: ignore[call-overload]
    ]
    if not args.skip_single:
        single_s, single_cpu, found_single = _timed(single)
        if found_single != found:
            raise SystemExit(f"batched {found} != one at a time {found_single}")
        metrics["single_10k_s"], metrics["single_10k_cpu_s"] = single_s * scale, single_cpu * scale
        rows += [
            ("single_10k_s (detect_series one by one)", f"{metrics['single_10k_s']:.2f}", "", "same results"),
            ("single_10k_cpu_s", f"{metrics['single_10k_cpu_s']:.2f}", "", ""),
        ]
    print_table(f"detection over {args.series} series x {args.days} daily buckets", rows)
    write_json(args.json, metrics)
    return metrics


if __name__ == "__main__":
    main()
