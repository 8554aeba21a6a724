"""Soak: 16 concurrent clients on classify + search + ingest against a server subprocess, for N minutes.

    python bench/soak.py --minutes 10 --json OUT.json

Starts ``nlp-service serve`` on a free loopback port with a fresh embedded database and an API key (scopes
classify, search, ingest), waits for /health, then runs the clients (about half classify, a third search, the
rest ingest batches of 20 new comments). Passes when there are 0 errors other than deliberate 429s (rate limit
or full inference queue: the client waits Retry-After and goes on) and the server's RSS growth beyond what the
memory model predicts for the comments stored meanwhile (``nlp_service.memory.bytes_per_stored_comment``) is
within 10% of its RSS after the first minute (after a quarter of the run for runs shorter than 4 minutes).
Prints a table; ``--json`` writes the figures (keys ``errors``, ``rss_growth_pct``, ``passed``, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, realistic_comments, write_json  # noqa: E402
from nlp_service.memory import bytes_per_stored_comment  # noqa: E402

OPS = ("classify", "search", "ingest")
WEIGHTS = (0.5, 0.3, 0.2)
QUERIES = [
    "late delivery",
    "charged twice",
    "refund never arrived",
    "app keeps crashing",
    "friendly support agent",
    "cannot log in to my account",
    "tax on the full price",
    "great prices and fast shipping",
]


@dataclass
class OpStats:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    throttled: int = 0
    requests: int = 0
    stored: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, comments created)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workdir: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Create an API key, then start the server; returns the process and the key."""
    env = {
        **os.environ,
        "NLP_VAR_DIR": str(workdir),
        "NLP_LOG_LEVEL": "warning",
        "NLP_RATE_LIMIT_PER_S": os.environ.get("NLP_RATE_LIMIT_PER_S", "0"),
    }
    env.pop("NLP_DATABASE_URL", None)
    cli = [sys.executable, "-m", "nlp_service.cli"]
    created = subprocess.run(
        [*cli, "keys", "create", "--name", "soak", "--scopes", "classify,search,ingest"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    return proc, key


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            response = httpx.get(f"{base}/health", timeout=2)
            if response.status_code == 200:
                return
            if response.json().get("status") == "failed":
                raise SystemExit(f"server failed to load models: {response.json().get('error')}")
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("server not ready in time")


async def client(
    http: httpx.AsyncClient,
    worker: int,
    texts: list[str],
    stats: dict[str, OpStats],
    stop_at: float,
) -> None:
    rng = random.Random(worker)
    serial = 0
    while time.monotonic() < stop_at:
        op = rng.choices(OPS, WEIGHTS)[0]
        if op == "classify":
            request = ("/v1/classify", {"texts": rng.sample(texts, rng.randint(1, 8))})
        elif op == "search":
            request = ("/v1/search", {"query": rng.choice(QUERIES), "k": 10})
        else:
            now = datetime.now(UTC).isoformat()
            comments = []
            for _ in range(20):
                serial += 1
                comments.append(
                    {
                        "id": f"soak-{worker}-{serial}",
                        "text": rng.choice(texts),
                        "created_at": now,
                        "source": rng.choice(["survey", "email", "chat", "review"]),
                        "touchpoint": rng.choice(["checkout", "delivery", "support", "app"]),
                        "region": rng.choice(["eu-west", "us-east", "apac"]),
                        "nps": rng.randint(0, 10),
                    }
                )
            request = ("/v1/comments", {"comments": comments})
        entry = stats[op]
        entry.requests += 1
        started = time.perf_counter()
        try:
            response = await http.post(request[0], json=request[1])
        except httpx.HTTPError as exc:
            entry.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        entry.statuses[response.status_code] = entry.statuses.get(response.status_code, 0) + 1
        if response.status_code == 429:
            entry.throttled += 1
            await asyncio.sleep(min(5.0, float(response.headers.get("retry-after", "1"))))
        elif response.status_code >= 300:
            entry.errors.append(f"{response.status_code}: {response.text[:200]}")
        else:
            entry.latencies.append(time.perf_counter() - started)
            if op == "ingest":
                entry.stored.append((time.monotonic(), int(response.json()["created"])))


async def sample_rss(
    proc: psutil.Process, samples: list[tuple[float, int]], t0: float, stop_at: float
) -> None:
    while time.monotonic() < stop_at:
        samples.append((time.monotonic() - t0, proc.memory_info().rss))
        await asyncio.sleep(5.0)
    samples.append((time.monotonic() - t0, proc.memory_info().rss))


async def soak(base: str, key: str, pid: int, seconds: float, clients: int) -> dict:
    texts = realistic_comments(500)
    stats = {op: OpStats() for op in OPS}
    samples: list[tuple[float, int]] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120, limits=limits) as http:
        t0 = time.monotonic()
        stop_at = t0 + seconds
        await asyncio.gather(
            sample_rss(psutil.Process(pid), samples, t0, stop_at),
            *(client(http, i, texts, stats, stop_at) for i in range(clients)),
        )
        elapsed = time.monotonic() - t0
        index = (await http.get("/v1/search/index")).json()
        dim = int((await http.get("/info")).json()["encoder"]["dim"])
    baseline_at = 60.0 if seconds >= 240 else seconds / 4
    rss_first = next(rss for t, rss in samples if t >= baseline_at)
    rss_end = samples[-1][1]
    errors = sum(len(s.errors) for s in stats.values())
    growth = (rss_end - rss_first) / rss_first * 100
    stored_after = sum(n for at, n in stats["ingest"].stored if at - t0 >= baseline_at)
    per_comment = bytes_per_stored_comment(dim=dim, index_kind=str(index["kind"]))
    beyond = (rss_end - rss_first - stored_after * per_comment) / rss_first * 100
    return {
        "seconds": round(elapsed, 1),
        "clients": clients,
        "errors": errors,
        "throttled_429": sum(s.throttled for s in stats.values()),
        "rss_baseline_at_s": baseline_at,
        "rss_first_mb": round(rss_first / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_peak_mb": round(max(r for _, r in samples) / 2**20, 1),
        "rss_growth_pct": round(growth, 2),
        "comments_stored_after_baseline": stored_after,
        "model_bytes_per_comment": per_comment,
        "model_growth_mb": round(stored_after * per_comment / 2**20, 1),
        "rss_growth_beyond_model_pct": round(beyond, 2),
        "passed": errors == 0 and beyond <= 10.0,
        "ops": {
            op: {
                "requests": s.requests,
                "ok": len(s.latencies),
                "rps": round(len(s.latencies) / elapsed, 2),
                "p50_ms": round(float(np.percentile(s.latencies, 50)) * 1000, 1) if s.latencies else None,
                "p95_ms": round(float(np.percentile(s.latencies, 95)) * 1000, 1) if s.latencies else None,
                "p99_ms": round(float(np.percentile(s.latencies, 99)) * 1000, 1) if s.latencies else None,
                "throttled_429": s.throttled,
                "errors": len(s.errors),
                "first_errors": s.errors[:5],
            }
            for op, s in stats.items()
        },
        "rss_samples_mb": [(round(t, 1), round(r / 2**20, 1)) for t, r in samples],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    parser.add_argument("--attach", default=None, help="soak a running local server (base URL) instead")
    parser.add_argument("--key", default=os.environ.get("NLP_API_KEY", ""), help="API key for --attach")
    parser.add_argument("--pid", type=int, default=None, help="server process id for --attach (RSS)")
    args = parser.parse_args(argv)

    if args.attach:
        if args.pid is None:
            parser.error("--attach needs --pid")
        result = asyncio.run(soak(args.attach, args.key, args.pid, args.minutes * 60, args.clients))
        return report(result, args)

    with tempfile.TemporaryDirectory(prefix="nlp-soak-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc, key = start_server(Path(tmp), port)
        try:
            wait_ready(base, proc)
            result = asyncio.run(soak(base, key, proc.pid, args.minutes * 60, args.clients))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return report(result, args)


def report(result: dict, args: argparse.Namespace) -> int:
    """Print the tables, write ``--json``; exit status 0 when the soak passed."""
    rows = [
        (op, o["requests"], o["rps"], o["p50_ms"], o["p95_ms"], o["p99_ms"], o["throttled_429"], o["errors"])
        for op, o in result["ops"].items()
    ]
    header = ("operation", "requests", "ok/s", "p50 ms", "p95 ms", "p99 ms", "429s", "errors")
    print_table(f"soak: {args.clients} clients for {result['seconds']} s", rows, header)
    print_table(
        "summary",
        [
            ("errors (other than 429)", result["errors"], "0 required"),
            (f"RSS after {result['rss_baseline_at_s']:.0f} s (MB)", result["rss_first_mb"], ""),
            ("RSS at the end (MB)", result["rss_end_mb"], ""),
            ("RSS growth (%)", result["rss_growth_pct"], ""),
            ("comments stored after the baseline", result["comments_stored_after_baseline"], ""),
            ("model growth for them (MB)", result["model_growth_mb"], ""),
            ("RSS growth beyond the model (%)", result["rss_growth_beyond_model_pct"], "<= 10 required"),
            ("passed", result["passed"], ""),
        ],
        ("metric", "value", "target"),
    )
    for op, o in result["ops"].items():
        for error in o["first_errors"]:
            print(f"  {op}: {error}")
    write_json(args.json, result)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
