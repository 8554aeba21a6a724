"""Crash test of ingest: SIGKILL the server mid-ingest, restart it, check nothing acknowledged was lost.

1. Starts ``nlp-service serve`` (real engine: the trained heads must exist under models/) as a subprocess on
   the embedded default (SQLite) with a temporary var dir.
2. Runs an ingest loop (batches of demo comments with unique texts) and SIGKILLs the server at a random
   moment while requests are in flight.
3. Restarts it on the same var dir, waits until the vector index has caught up from the database.
4. Checks that every acknowledged comment is stored exactly once, that the index holds exactly the stored
   comments, and that a ``comment_id`` search for each acknowledged comment returns it first.

    .venv/bin/python scripts/crash_ingest.py [--batches 40] [--batch-size 20] [--seed 3] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlp_service.config import Settings  # noqa: E402
from nlp_service.demo.generator import DemoConfig, generate  # noqa: E402

HEADS = ("sentiment", "emotion", "intensity", "valence")
# --fake-engine: the test suite's deterministic engine; checks the storage/index mechanics only.
FAKE_SERVER = """
import sys, uvicorn
sys.path.insert(0, "tests")
from conftest import FakeEngine
from nlp_service.config import Settings
from nlp_service.main import create_app
app = create_app(Settings(), engine=FakeEngine())
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``nlp-service serve`` in its own process group."""

    def __init__(self, var_dir: Path, port: int, log: Path, *, fake_engine: bool = False) -> None:
        self.var_dir, self.port, self.log, self.fake_engine = var_dir, port, log, fake_engine
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "NLP_VAR_DIR": str(self.var_dir),
            "NLP_PORT": str(self.port),
            "NLP_RATE_LIMIT_PER_S": "0",  # the checks send hundreds of searches
        }
        env.pop("NLP_DATABASE_URL", None)
        out = self.log.open("ab")
        command = [sys.executable, "-m", "nlp_service.cli", "serve"]
        if self.fake_engine:
            command = [sys.executable, "-c", FAKE_SERVER, str(self.port)]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, client: httpx.Client, timeout_s: float = 300.0) -> None:
        """/health 200 and the vector index caught up (no background build running)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with code {self.proc.returncode}; see {self.log}")
            try:
                if client.get("/health").status_code == 200:
                    status = client.get("/v1/search/index").json()
                    if status.get("ready") and not status.get("building"):
                        return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"server not ready after {timeout_s:.0f}s; see {self.log}")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def post(client: httpx.Client, path: str, body: dict[str, Any], attempts: int = 10) -> httpx.Response:
    """POST, waiting and retrying on 429/503."""
    for _ in range(attempts):
        response = client.post(path, json=body)
        if response.status_code not in (429, 503):
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")))
    return response


def comments(n: int, seed: int) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(generate(DemoConfig(n=n, seed=seed))):
        item["text"] = f"{item['text']} (ref {seed}-{i})"  # unique texts: a search for it finds it first
        out.append(item)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=40, help="batches to send before the kill + after")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary var dir")
    parser.add_argument(
        "--fake-engine",
        action="store_true",
        help="development only: the tests' fake engine (no models needed)",
    )
    args = parser.parse_args()

    models = Settings().models_dir
    missing = [t for t in HEADS if not (models / t).is_dir()]
    if missing and not args.fake_engine:
        print(f"FAIL: the real engine cannot load: no trained heads for {', '.join(missing)} under {models}")
        return 2

    rng = random.Random(args.seed)
    var_dir = Path(tempfile.mkdtemp(prefix="nlp-crash-"))
    server = Server(var_dir, free_port(), var_dir / "server.log", fake_engine=args.fake_engine)
    data = comments(args.batches * args.batch_size, args.seed)
    batches = [data[i : i + args.batch_size] for i in range(0, len(data), args.batch_size)]
    passed = False
    acked: set[str] = set()
    unacked: set[str] = set()
    started = time.perf_counter()
    try:
        client = httpx.Client(base_url=server.url, timeout=120)
        server.start()
        server.wait_ready(client)
        print(f"server up on {server.url} (var dir {var_dir})")

        kill_after = rng.uniform(0.2, 2.0)
        killed = threading.Event()
        enough = threading.Event()  # a few batches acknowledged: kill during a later one

        def killer() -> None:
            enough.wait(120)
            time.sleep(kill_after)
            server.kill()
            killed.set()

        threading.Thread(target=killer, daemon=True).start()
        sent = 0
        for batch in batches:
            ids = {c["id"] for c in batch}
            try:
                r = client.post("/v1/comments", json={"comments": batch})
            except httpx.TransportError:
                unacked |= ids
                break
            sent += 1
            if r.status_code in (200, 201):
                acked |= ids
                if sent >= 3:
                    enough.set()
            else:
                unacked |= ids
                if not killed.is_set():
                    print(f"FAIL: unexpected HTTP {r.status_code}: {r.text[:300]}")
                    return 1
        killed.wait(30)
        print(f"SIGKILL mid-ingest: {len(acked)} comments acknowledged in {sent} batches before it")

        server.start()
        server.wait_ready(client)
        rest = [b for b in batches if not {c["id"] for c in b} <= acked]
        for batch in rest:  # re-send what was not acknowledged (idempotent) and the remaining batches
            r = post(client, "/v1/comments", {"comments": batch})
            if r.status_code not in (200, 201):
                print(f"FAIL: HTTP {r.status_code} after restart: {r.text[:300]}")
                return 1
            acked |= {c["id"] for c in batch}
        server.wait_ready(client)

        db = sqlite3.connect(var_dir / "nlp_service.db")
        rows = dict(db.execute("SELECT id, count(*) FROM comments GROUP BY id").fetchall())
        n_predictions = db.execute("SELECT count(*) FROM predictions").fetchone()[0]
        db.close()
        missing_ids = sorted(acked - set(rows))
        doubled = sorted(i for i, n in rows.items() if n != 1)
        index = client.get("/v1/search/index").json()
        not_first = []
        for cid in sorted(acked):
            hits = post(client, "/v1/search", {"comment_id": cid, "k": 10}).json()["results"]
            scores = {h["id"]: h["score"] for h in hits}
            # itself first (or tied with the first: an identical embedding)
            if cid not in scores or scores[cid] < hits[0]["score"] - 1e-6:
                not_first.append(cid)

        ok = not missing_ids and not doubled and not not_first and index["size"] == len(rows) == n_predictions
        print()
        print(f"{'acknowledged comments':<36} {len(acked)}")
        print(f"{'stored comments / predictions':<36} {len(rows)} / {n_predictions}")
        print(f"{'acknowledged but missing':<36} {len(missing_ids)}")
        print(f"{'stored more than once':<36} {len(doubled)}")
        print(f"{'vector index size (kind)':<36} {index['size']} ({index['kind']})")
        print(f"{'comment_id search not returning itself':<36} {len(not_first)}")
        print(f"{'elapsed':<36} {time.perf_counter() - started:.1f}s")
        print("PASS" if ok else "FAIL")
        if not ok:
            print({"missing": missing_ids[:10], "doubled": doubled[:10], "not_first": not_first[:10]})
        passed = ok
        return 0 if ok else 1
    finally:
        server.stop()
        if args.keep or not passed:
            print(f"kept {var_dir} (server.log, nlp_service.db)")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
