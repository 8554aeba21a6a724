"""The cost of sentence-aware topics: classify and ingest with ``NLP_TOPIC_SENTENCES`` off and on.

    python bench/topic_sentences.py [--rounds 2] [--comments 2000] [--ingest 1000] [--json OUT.json]
    python bench/topic_sentences.py --paired [--repeats 30] [--json OUT.json]

Each round starts the server (embedded default, real encoder) once with the option off and once with it on,
in alternating order, and measures on each: comments/s through POST /v1/classify (8 clients, 16 comments
per request, as bench/classify.py), single-comment p50/p99 latency, and comments/s through POST
/v1/comments (batches of 100 new comments). Alternating rounds spread a drift of the machine's speed over
both settings; the table gives each figure's median over the rounds and on/off ratio.

``--paired`` measures the engine in process instead (``Engine.analyze``, the work a classify or ingest batch
does): batches of 16 comments and single comments, each analysed with the option off and then on
back-to-back (order alternating), so that the ratio of each pair sees the same machine speed even on a
loaded, shared machine; it reports the median of the pairs' ratios, in wall and in process CPU time.
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


def paired(comments: list[str], repeats: int) -> dict[str, float]:
    """Median on/off ratios of ``Engine.analyze`` time over back-to-back pairs (wall and CPU)."""
    from nlp_service.config import Settings
    from nlp_service.inference.engine import Engine

    engine = Engine(Settings(topic_sentences=False))
    engine.warm_up()
    settings = {False: engine.settings, True: engine.settings.model_copy(update={"topic_sentences": True})}
    out: dict[str, float] = {}
    for size in (16, 1):
        batches = [comments[i : i + size] for i in range(0, len(comments), size)][:repeats]
        ratios: dict[str, list[float]] = {"wall": [], "cpu": []}
        totals = {False: [0.0, 0.0], True: [0.0, 0.0]}
        for k, batch in enumerate(batches * 2):
            spent: dict[bool, tuple[float, float]] = {}
            for on in (False, True) if k % 2 == 0 else (True, False):
                engine.settings = settings[on]
                w0, c0 = time.perf_counter(), time.process_time()
                engine.analyze(batch)
                spent[on] = (time.perf_counter() - w0, time.process_time() - c0)
                totals[on][0] += spent[on][0]
                totals[on][1] += spent[on][1]
            ratios["wall"].append(spent[True][0] / spent[False][0])
            ratios["cpu"].append(spent[True][1] / max(spent[False][1], 1e-9))
        out[f"batch{size}_wall_ratio_median"] = round(float(np.median(ratios["wall"])), 4)
        out[f"batch{size}_cpu_ratio_median"] = round(float(np.median(ratios["cpu"])), 4)
        out[f"batch{size}_wall_ratio_total"] = round(totals[True][0] / totals[False][0], 4)
        out[f"batch{size}_off_ms_median"] = round(1000 * totals[False][0] / len(batches * 2), 2)
    engine.settings = settings[False]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--comments", type=int, default=2000)
    parser.add_argument("--ingest", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-request", type=int, default=16)
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--paired", action="store_true", help="in-process back-to-back pairs (see above)")
    parser.add_argument("--repeats", type=int, default=40, help="--paired: batches per size")
    parser.add_argument(
        "--multi-only", action="store_true", help="only comments of 2+ sentences (worst case)"
    )
    args = parser.parse_args()

    comments = realistic_comments(args.comments, seed=7)
    if args.multi_only:
        comments = [t for t in comments if len(split_sentences(t, clauses=True)) >= 2]
    multi = float(np.mean([len(split_sentences(t, clauses=True)) >= 2 for t in comments]))
    if args.paired:
        figures = {"multi_sentence_share": round(multi, 4), **paired(comments, args.repeats)}
        print_table("sentence-aware topics, on/off pairs", list(figures.items()), header=("metric", "value"))
        write_json(args.json, figures)
        return
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
