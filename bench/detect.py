"""Detection speed over many topic x segment series.

    python bench/detect.py --json OUT.json [--series 10000] [--days 365]

Generates ``--series`` seeded Poisson streams of ``--days`` daily buckets (weekly seasonality, random
spikes/shifts in a third of them), then times ``detect_series`` (streaming spikes for every bucket,
PELT change points, episodes) over all of them in one process. Key ``detect_10k_s`` (wall clock, bar
<= 30 s); ``detect_10k_cpu_s`` is the process CPU time, steadier when other jobs share the cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, write_json  # noqa: E402
from nlp_service.anomaly.detectors import Series, detect_series  # noqa: E402
from nlp_service.anomaly.synthetic import generate, random_events  # noqa: E402


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=0)
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

    t0, c0 = time.perf_counter(), time.process_time()
    n_cp = n_spikes = n_episodes = 0
    for s in streams:
        res = detect_series(Series.from_arrays(s.timestamps, s.values, s.bucket_seconds))
        n_cp += len(res.change_points)
        n_spikes += len(res.spikes)
        n_episodes += len(res.episodes)
    detect_s = time.perf_counter() - t0
    cpu_s = time.process_time() - c0
    scale = 10_000 / max(args.series, 1)
    metrics = {
        "detect_10k_s": detect_s * scale,
        "detect_10k_cpu_s": cpu_s * scale,
        "detect_ms_per_series": 1000 * detect_s / max(args.series, 1),
        "series": float(args.series),
        "buckets_per_series": float(args.days),
    }
    print_table(
        f"detect_series over {args.series} series x {args.days} daily buckets",
        [
            ("detect_10k_s", f"{metrics['detect_10k_s']:.2f}", "<= 30", ""),
            ("detect_10k_cpu_s (process CPU time)", f"{metrics['detect_10k_cpu_s']:.2f}", "", ""),
            ("ms per series", f"{metrics['detect_ms_per_series']:.3f}", "", ""),
            ("generation s (not timed)", f"{gen_s:.2f}", "", ""),
            ("change points / spikes / episodes", f"{n_cp} / {n_spikes} / {n_episodes}", "", ""),
        ],
    )
    write_json(args.json, metrics)
    return metrics


if __name__ == "__main__":
    main()
