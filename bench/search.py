"""Search benchmark: served-index latency and recall at 100k and 1M vectors, query encoding, ingest rate.

Vectors look like comment embeddings: real all-MiniLM-L6-v2 embeddings of dataset texts (the training
feature cache under var/cache/features, else freshly encoded demo comments), extended to the target size
with paraphrase-like synthetic vectors ``normalise(e_i + b * e_j + noise)`` (b ~ U(0, 0.35), noise sd 0.03
per dimension: cosine ~0.85-0.95 to their source). Queries are held-out real embeddings.

For each size: build time of the index the service would serve (nlp_service.search.faiss_index.build_index
with the configured HNSW parameters), single-query latency p50/p99 through VectorIndex.search (k=10, query
encoding excluded), recall@10 against exact inner-product search. Separately: query encoding time (one
text) and, when the trained heads exist, ingest throughput through POST /v1/comments on SQLite (batches of
100, a real server subprocess).

    .venv/bin/python bench/search.py --json var/bench/search.json [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_json  # noqa: E402
from nlp_service.config import Settings  # noqa: E402
from nlp_service.search.faiss_index import IndexParams, build_index  # noqa: E402
from nlp_service.search.index import VectorIndex  # noqa: E402


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def real_embeddings(limit: int = 200_000) -> np.ndarray:
    """Distinct real comment embeddings from the training feature cache, else encoded demo comments."""
    files = sorted(glob.glob(str(ROOT / "var" / "cache" / "features" / "*.npz")))
    parts = []
    for f in files:
        try:
            with np.load(f) as data:
                parts.append(np.asarray(data["embedding"], dtype=np.float32))
        except Exception:  # a file being written by another process
            continue
    dim = 384  # all-MiniLM-L6-v2; the cache may also hold other encoders' features (e.g. from tests)
    parts = [p for p in parts if p.ndim == 2 and p.shape[1] == dim]
    if parts:
        emb = np.vstack(parts)
        _, keep = np.unique(np.round(emb, 3), axis=0, return_index=True)
        emb = emb[np.sort(keep)]
        print(f"real embeddings: {len(emb)} distinct, from {len(parts)} cached feature files")
        return _normalise(emb[:limit])
    from nlp_service.demo.generator import DemoConfig, generate
    from nlp_service.inference.encoder import Encoder

    settings = Settings()
    texts = sorted({c["text"] for c in generate(DemoConfig(n=30_000, seed=11))})
    print(f"no feature cache: encoding {len(texts)} distinct demo comments")
    enc = Encoder(settings.encoder, threads=settings.torch_threads)
    return enc.encode(texts).embedding.astype(np.float32)


def synthesise(base: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` vectors: all of ``base`` first, then paraphrase-like mixtures of its rows."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    m = min(n, len(base))
    out[:m] = base[:m]
    chunk = 100_000
    for start in range(m, n, chunk):
        size = min(chunk, n - start)
        i = rng.integers(0, len(base), size)
        j = rng.integers(0, len(base), size)
        b = rng.uniform(0.0, 0.35, size).astype(np.float32)[:, None]
        noise = rng.normal(0.0, 0.03, (size, base.shape[1])).astype(np.float32)
        out[start : start + size] = _normalise(base[i] + b * base[j] + noise)
    return out


def _measure(
    served: VectorIndex, queries: np.ndarray, truth: np.ndarray, k: int
) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, recall@k) of single-query searches through the served code path."""
    for q in queries[:50]:  # warm-up
        served.search(q, k)
    latencies, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, got = served.search(q, k)
        latencies.append((time.perf_counter() - t) * 1000)
        found.append(got[0])
    hits = [len(set(f.tolist()) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)]
    lat = np.asarray(latencies)
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), float(np.mean(hits))


def bench_size(
    vectors: np.ndarray, queries: np.ndarray, params: IndexParams, k: int = 10, sweep: tuple[int, ...] = ()
) -> dict[str, object]:
    n = len(vectors)
    ids = np.arange(1, n + 1, dtype=np.int64)
    t0 = time.perf_counter()
    served = VectorIndex(params)
    built = build_index(params, ids, vectors)
    build_s = time.perf_counter() - t0
    served._index, served._ids = built, set(ids.tolist())  # as after a background rebuild

    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, k)
    truth += 1  # row ids start at 1
    del exact

    p50, p99, recall = _measure(served, queries, truth, k)
    out: dict[str, object] = {
        "n": n,
        "kind": served.kind,
        "build_s": round(build_s, 2),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "recall10": round(recall, 4),
    }
    if served.kind == "hnsw" and sweep:
        rows = {}
        for ef in sweep:  # the same graph searched with other efSearch values
            served.params = replace(params, ef_search=ef)
            p50, p99, recall = _measure(served, queries, truth, k)
            rows[str(ef)] = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "recall10": round(recall, 4)}
        served.params = params
        out["ef_search_sweep"] = rows
    return out


def encode_ms(threads: int, runs: int = 40) -> float:
    """Median time to encode one query text (batch of 1) on ``threads`` torch threads."""
    from nlp_service.inference.encoder import Encoder

    enc = Encoder(Settings().encoder, threads=threads)
    texts = [f"charged tax on the full price instead of the sale price, order ORD-{i}" for i in range(runs)]
    enc.encode(texts[:2])
    times = []
    for text in texts:
        t = time.perf_counter()
        enc.encode([text])
        times.append((time.perf_counter() - t) * 1000)
    return round(float(np.median(times)), 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ingest_cps(n: int = 2000) -> tuple[float | None, str]:
    """Comments per second through POST /v1/comments (batches of 100, SQLite) on a real server."""
    import httpx

    from nlp_service.demo.generator import DemoConfig, generate

    models = Settings().models_dir
    missing = [t for t in ("sentiment", "emotion", "intensity", "valence") if not (models / t).is_dir()]
    if missing:
        return None, f"trained heads missing under {models}: {', '.join(missing)}"
    var = Path(tempfile.mkdtemp(prefix="nlp-bench-"))
    port = _free_port()
    env = {**os.environ, "NLP_VAR_DIR": str(var), "NLP_PORT": str(port), "NLP_LOG_LEVEL": "warning"}
    env.pop("NLP_DATABASE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "nlp_service.cli", "serve"], cwd=ROOT, env=env, start_new_session=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=120) as client:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None:
                    return None, f"server exited with {server.returncode}"
                time.sleep(0.5)
            else:
                return None, "server not ready after 180 s"
            comments = list(generate(DemoConfig(n=n + 100, seed=5)))
            client.post("/v1/comments", json={"comments": comments[:100]})  # warm-up
            t0 = time.perf_counter()
            for start in range(100, n + 100, 100):
                r = client.post("/v1/comments", json={"comments": comments[start : start + 100]})
                if r.status_code not in (200, 201):
                    return None, f"HTTP {r.status_code}: {r.text[:200]}"
            return round(n / (time.perf_counter() - t0), 1), "ok"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(var, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", required=True, help="write the results here")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--m", type=int, default=None, help="HNSW M (default: settings)")
    parser.add_argument("--ef-construction", type=int, default=None)
    parser.add_argument("--ef-search", type=int, default=None)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--ef-sweep", default="", help="also measure these efSearch values, e.g. 64,128,256")
    args = parser.parse_args()

    settings = Settings()
    params = IndexParams(
        dim=384,
        exact_max=settings.search_exact_max,
        hnsw_m=args.m or settings.search_hnsw_m,
        ef_construction=args.ef_construction or settings.search_hnsw_ef_construction,
        ef_search=args.ef_search or settings.search_hnsw_ef_search,
    )
    real = real_embeddings()
    rng = np.random.default_rng(1)
    order = rng.permutation(len(real))
    queries = real[order[: args.queries]]
    base = real[order[args.queries :]]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: dict[str, object] = {
        "params": {
            "hnsw_m": params.hnsw_m,
            "ef_construction": params.ef_construction,
            "ef_search": params.ef_search,
            "exact_max": params.exact_max,
        },
        "real_vectors": int(len(base)),
        "queries": int(len(queries)),
        "cpus": os.cpu_count(),
        "sizes": {},
    }
    rows = []
    for n in sizes:
        vectors = synthesise(base, n)
        print(f"building the served index over {n:,} vectors ...", flush=True)
        sweep = tuple(int(e) for e in args.ef_sweep.split(",") if e)
        row = bench_size(vectors, queries, params, sweep=sweep)
        del vectors
        rows.append(row)
        results["sizes"][str(n)] = row  # type: ignore[index]
        print(row, flush=True)
    by_n = {r["n"]: r for r in rows}
    if 1_000_000 in by_n:
        results["p99_ms_1m"] = by_n[1_000_000]["p99_ms"]
        results["p50_ms_1m"] = by_n[1_000_000]["p50_ms"]
        results["recall10_1m"] = by_n[1_000_000]["recall10"]
        results["build_s_1m"] = by_n[1_000_000]["build_s"]
    if 100_000 in by_n:
        results["p99_ms_100k"] = by_n[100_000]["p99_ms"]
        results["recall10_100k"] = by_n[100_000]["recall10"]
        results["build_s_100k"] = by_n[100_000]["build_s"]
    results["encode_ms"] = encode_ms(settings.torch_threads)
    results["encode_threads"] = settings.torch_threads
    results["encode_ms_1thread"] = encode_ms(1)
    if args.skip_ingest:
        results["ingest_cps"], note = None, "skipped"
    else:
        results["ingest_cps"], note = ingest_cps()
    results["ingest_note"] = note

    print()
    print(f"{'vectors':>10} {'index':>6} {'build s':>9} {'p50 ms':>8} {'p99 ms':>8} {'recall@10':>10}")
    for r in rows:
        print(
            f"{r['n']:>10,} {r['kind']:>6} {r['build_s']:>9.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['recall10']:>10.4f}"
        )
    print(
        f"query encoding (median, one text): {results['encode_ms']} ms on {settings.torch_threads} torch "
        f"thread(s), {results['encode_ms_1thread']} ms on 1"
    )
    print(f"ingest: {results['ingest_cps']} comments/s ({note})")
    write_json(Path(args.json), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
