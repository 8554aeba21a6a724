"""RSS per stored comment: ingest in steps into a server subprocess and fit the growth, against the model.

    python bench/memory.py --json OUT.json [--steps 4] [--per-step 3000]

Starts ``nlp-service serve`` (embedded default, real encoder, heap trimmed every 2 s), ingests ``--steps``
batches of ``--per-step`` new comments (realistic texts, each with a unique order number so spaCy meets new
words), and after each step waits for the heap trimmer and reads the server's RSS. The least-squares slope of
RSS over stored comments (the first step, which also warms caches, is left out) is compared with
``nlp_service.memory.bytes_per_stored_comment``. Keys ``measured_bytes_per_comment``,
``model_bytes_per_comment``, ``ratio`` (measured / model; bar <= 1.5).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, realistic_comments, write_json  # noqa: E402
from bench.server import free_port, start_server  # noqa: E402
from nlp_service.memory import bytes_per_stored_comment  # noqa: E402

BATCH = 100


def ingest(client: httpx.Client, texts: list[str], first: int, n: int) -> None:
    """Store comments ``first .. first + n - 1`` (ids and order numbers unique)."""
    for start in range(first, first + n, BATCH):
        comments = [
            {
                "id": f"mem-{i}",
                "text": f"{texts[i % len(texts)]} Order ORD-{i:07d}.",
                "created_at": "2026-11-20T10:00:00Z",
                "source": "survey",
                "region": "eu-west",
                "nps": i % 11,
            }
            for i in range(start, min(start + BATCH, first + n))
        ]
        response = client.post("/v1/comments", json={"comments": comments})
        response.raise_for_status()


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--per-step", type=int, default=3000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.steps < 3:
        parser.error("--steps must be >= 3 (the first step is left out of the fit)")

    texts = realistic_comments(500, seed=11)
    port = free_port()
    rows: list[tuple[str, ...]] = []
    stored: list[int] = []
    rss_mb: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, {"NLP_MALLOC_TRIM_INTERVAL_S": "2"}, Path(tmp))
        try:
            process = psutil.Process(server.pid)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
                dim = int(client.get("/info").json()["encoder"]["dim"])
                for step in range(args.steps):
                    t0 = time.perf_counter()
                    ingest(client, texts, step * args.per_step, args.per_step)
                    seconds = time.perf_counter() - t0
                    time.sleep(3)  # let the heap trimmer run
                    index = client.get("/v1/search/index").json()
                    stored.append(int(index["size"]))
                    rss_mb.append(process.memory_info().rss / 2**20)
                    row = (f"step {step + 1}", str(stored[-1]), f"{rss_mb[-1]:.1f}", f"{seconds:.0f} s")
                    rows.append(row)
        finally:
            server.terminate()
            server.wait(30)
    slope = float(np.polyfit(stored[1:], rss_mb[1:], 1)[0]) * 2**20
    model = bytes_per_stored_comment(dim=dim, index_kind=str(index["kind"]))
    metrics = {
        "measured_bytes_per_comment": round(slope, 1),
        "model_bytes_per_comment": float(model),
        "ratio": round(slope / model, 3),
        "stored": float(stored[-1]),
    }
    print_table("server RSS after each ingest step", rows, ("step", "stored", "RSS MB", "ingest time"))
    print_table(
        f"bytes per stored comment ({index['kind']} index, {dim}-d)",
        [
            ("measured (slope, steps 2..)", f"{slope:.0f}", "", ""),
            ("model", f"{model}", "", "nlp_service.memory.bytes_per_stored_comment"),
            ("ratio", f"{metrics['ratio']:.2f}", "<= 1.5", ""),
        ],
    )
    write_json(args.json, metrics)
    return metrics


if __name__ == "__main__":
    main()
