"""Classify throughput and latency over HTTP, against a naive transformers pipeline, in one run.

    python bench/classify.py --json OUT.json

Starts the API as a subprocess on a free port (embedded default), then measures:
- comments/s through POST /v1/classify with 8 concurrent clients over 2,000 realistic comments of 5-60 words;
- single-comment p50 / p99 latency at low load (one client, one comment per request);
- peak RSS of the server process (and which encoder runtime it served with: ``NLP_ENCODER_RUNTIME``);
- comments/s of the same encoder through a transformers ``pipeline("feature-extraction")`` loop, timed half
  before the server starts and half after it stops, so a drift in the machine's speed hits both figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, realistic_comments, write_json  # noqa: E402
from bench.server import PeakRss, free_port, start_server  # noqa: E402


def throughput(url: str, comments: list[str], clients: int, per_request: int) -> float:
    chunks = [comments[i : i + per_request] for i in range(0, len(comments), per_request)]
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        with httpx.Client(timeout=120) as http:
            while True:
                with lock:
                    if not chunks:
                        return
                    chunk = chunks.pop()
                r = http.post(f"{url}/v1/classify", json={"texts": chunk})
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, first: {errors[0]}")
    return len(comments) / elapsed


def single_latency(url: str, comments: list[str], n: int) -> tuple[float, float]:
    times = []
    with httpx.Client(timeout=60) as http:
        for text in comments[:10]:  # warm the connection and caches
            http.post(f"{url}/v1/classify", json={"texts": [text]})
        for text in comments[:n]:
            t0 = time.perf_counter()
            r = http.post(f"{url}/v1/classify", json={"texts": [text]})
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.text
            time.sleep(0.01)  # low load: one request at a time, with gaps
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


class PipelineBaseline:
    """The naive baseline: the same encoder through transformers' ``pipeline("feature-extraction")``, one
    comment per call. It is timed in two halves, before and after the HTTP phase, so that a machine whose
    speed drifts during the run (shared CPUs do) weighs on both sides of the ratio alike."""

    def __init__(self, threads: int) -> None:
        import torch
        from transformers import pipeline

        from nlp_service.config import Settings

        torch.set_num_threads(threads)
        encoder = Settings().encoder
        self.extractor = pipeline("feature-extraction", model=encoder, framework="pt", device="cpu")
        self.comments = 0
        self.seconds = 0.0

    def run(self, comments: list[str]) -> None:
        for text in comments[:5]:  # warm-up, not timed
            self.extractor(text)
        started = time.perf_counter()
        for text in comments:
            features = np.asarray(self.extractor(text, truncation=True)[0])
            _ = features.mean(axis=0)  # mean pooling, as the service does
        self.seconds += time.perf_counter() - started
        self.comments += len(comments)

    @property
    def cps(self) -> float:
        return self.comments / self.seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--comments", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-request", type=int, default=16, help="comments per /v1/classify call")
    parser.add_argument("--latency-requests", type=int, default=300)
    parser.add_argument(
        "--pipeline-comments", type=int, default=500, help="comments for the pipeline baseline"
    )
    parser.add_argument("--quantize", action="store_true", help="serve the int8 encoder")
    args = parser.parse_args()

    comments = realistic_comments(args.comments, seed=7)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    import tempfile

    baseline = PipelineBaseline(threads=int(os.environ.get("NLP_TORCH_THREADS", 2)))
    half = args.pipeline_comments // 2
    baseline.run(comments[:half])
    with tempfile.TemporaryDirectory() as tmp:
        env = {"NLP_QUANTIZE": "true" if args.quantize else "false"}
        server = start_server(port, env, Path(tmp))
        rss = PeakRss(server.pid)
        try:
            runtime = httpx.get(f"{url}/info").json()["encoder"]["runtime"]
            p50, p99 = single_latency(url, comments, args.latency_requests)
            cps = throughput(url, comments, args.clients, args.per_request)
            peak_mb = rss.stop()
        finally:
            server.terminate()
            server.wait(30)
    baseline.run(comments[half : args.pipeline_comments])
    base = baseline.cps
    figures = {
        "classify_cps": round(cps, 1),
        "pipeline_cps": round(base, 1),
        "speedup": round(cps / base, 2),
        "single_p50_ms": round(p50, 1),
        "single_p99_ms": round(p99, 1),
        "server_rss_mb": round(peak_mb, 1),
        "comments": len(comments),
        "clients": args.clients,
        "per_request": args.per_request,
        "quantized": args.quantize,
        "runtime": runtime,
    }
    bars = {
        "classify_cps": ">= 2.0 x pipeline_cps",
        "single_p99_ms": "<= 30",
        "server_rss_mb": "<= 1500",
    }
    ok = {
        "classify_cps": cps >= 2 * base,
        "single_p99_ms": p99 <= 30,
        "server_rss_mb": peak_mb <= 1500,
    }
    print_table(
        "classify benchmark",
        [
            (k, v, bars.get(k, ""), ("ok" if ok[k] else "MISSED") if k in ok else "")
            for k, v in figures.items()
        ],
    )
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
