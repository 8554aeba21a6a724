"""The cost of sentence-aware topics: classify and ingest with ``NLP_TOPIC_SENTENCES`` off and on.

    python bench/topic_sentences.py [--rounds 2] [--comments 2000] [--ingest 1000] [--json OUT.json]

Each round starts the server (embedded default, real encoder) once with the option off and once with it on,
in alternating order, and measures on each: comments/s through POST /v1/classify (8 clients, 16 comments
per request, as bench/classify.py), single-comment p50/p99 latency, and comments/s through POST
/v1/comments (batches of 100 new comments). Alternating rounds spread a drift of the machine's speed over
both settings; the table gives each figure's median over the rounds and on/off ratio.
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

from bench.classify import single_latency, throughput  # noqa: E402
from bench.common import print_table, realistic_comments, write_json  # noqa: E402
from bench.server import free_port, start_server  # noqa: E402
from nlp_service.inference.sentences import split_sentences  # noqa: E402


def ingest(client: httpx.Client, texts: list[str], first: int, n: int, batch: int = 100) -> None:
    """Store ``n`` new comments with the texts from ``first`` on (cycling), ``batch`` per request."""
    for start in range(first, first + n, batch):
        comments = [
            {
                "id": f"s-{i}",
                "text": texts[i % len(texts)],
                "created_at": "2026-11-20T10:00:00Z",
                "source": "survey",
            }
            for i in range(start, min(start + batch, first + n))
        ]
        client.post("/v1/comments", json={"comments": comments}).raise_for_status()


def measure(setting: str, comments: list[str], args: argparse.Namespace, offset: int) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, {"NLP_TOPIC_SENTENCES": setting}, Path(tmp))
        try:
            p50, p99 = single_latency(url, comments, args.latency_requests)
            cps = throughput(url, comments, args.clients, args.per_request)
            with httpx.Client(base_url=url, timeout=300) as client:
                ingest(client, comments, offset, 100)  # warm the write path
                t0 = time.perf_counter()
                ingest(client, comments, offset + 100, args.ingest)
                ingest_cps = args.ingest / (time.perf_counter() - t0)
        finally:
            server.terminate()
            server.wait(30)
    return {"classify_cps": cps, "single_p50_ms": p50, "single_p99_ms": p99, "ingest_cps": ingest_cps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--comments", type=int, default=2000)
    parser.add_argument("--ingest", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-request", type=int, default=16)
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    comments = realistic_comments(args.comments, seed=7)
    multi = float(np.mean([len(split_sentences(t)) >= 2 for t in comments]))
    runs: dict[str, list[dict[str, float]]] = {"false": [], "true": []}
    for r in range(args.rounds):
        for setting in ("false", "true") if r % 2 == 0 else ("true", "false"):
            figures = measure(setting, comments, args, offset=0)
            runs[setting].append(figures)
            print(f"round {r} NLP_TOPIC_SENTENCES={setting}: {figures}", flush=True)
    keys = ("classify_cps", "single_p50_ms", "single_p99_ms", "ingest_cps")
    off = {k: float(np.median([f[k] for f in runs["false"]])) for k in keys}
    on = {k: float(np.median([f[k] for f in runs["true"]])) for k in keys}
    rows = [(k, round(off[k], 1), round(on[k], 1), f"{on[k] / off[k]:.3f}") for k in keys]
    print_table(
        f"sentence-aware topics, {args.rounds} rounds (multi-sentence comments: {multi:.1%})",
        rows,
        header=("metric", "off", "on", "on/off"),
    )
    write_json(
        args.json,
        {
            "multi_sentence_share": round(multi, 4),
            "off": off,
            "on": on,
            "runs": runs,
            "ratio": {k: round(on[k] / off[k], 4) for k in keys},
        },
    )


if __name__ == "__main__":
    main()
