"""Retrain sentiment, promote it in a running API under load, then roll back: zero failed requests.

    python scripts/hot_swap.py [--data ../shared/datasets]

Works on a temporary copy of ``models/`` (the shipped registry is not touched):
1. retrains the sentiment head from tweeteval_sentiment train
   (``python -m training defaults --only sentiment``) and shows the new version
   with its metrics (``python -m training show``);
2. starts the API on that registry, with 8 client threads calling /v1/classify without pause (the
   per-client rate limit off: this measures swaps, not throttling; ``--rate-limit 50`` keeps the default);
3. ``python -m training promote sentiment <new>``: the API's registry watcher swaps the head in;
4. ``python -m training rollback sentiment``: back to the previous version the same way;
and reports every request's outcome and the sentiment versions the clients saw, in order. A 429 (rate
limit or full queue, with Retry-After) is reported as throttled, apart from failures: it is the server
refusing load it was told to refuse, not a request lost in a swap. Exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.classify import free_port, start_server  # noqa: E402
from bench.common import realistic_comments  # noqa: E402


def training(*args: str, registry: Path) -> str:
    cmd = [sys.executable, "-m", "training", *args, "--registry", str(registry)]
    print("$", " ".join(cmd[1:]), flush=True)
    out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout
    return out


class Clients:
    """Client threads calling /v1/classify in a loop, recording status codes and sentiment versions."""

    def __init__(self, url: str, n: int, texts: list[str]) -> None:
        self.url, self.texts = url, texts
        self.statuses: Counter[int | str] = Counter()
        self.versions: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    def _run(self, i: int) -> None:
        with httpx.Client(timeout=60) as http:
            j = i
            while not self._stop.is_set():
                chunk = [self.texts[(j + k) % len(self.texts)] for k in range(4)]
                j += 4
                try:
                    r = http.post(f"{self.url}/v1/classify", json={"texts": chunk})
                    status: int | str = r.status_code
                    version = r.json()["model_versions"]["sentiment"] if r.status_code == 200 else None
                except httpx.HTTPError as exc:
                    status, version = type(exc).__name__, None
                with self._lock:
                    self.statuses[status] += 1
                    if version and (not self.versions or self.versions[-1][1] != version):
                        self.versions.append((time.monotonic(), version))

    def current(self) -> str | None:
        with self._lock:
            return self.versions[-1][1] if self.versions else None

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self.threads:
            t.join()


def wait_for_version(clients: Clients, version: str, timeout_s: float = 120) -> float:
    started = time.monotonic()
    while clients.current() != version:
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"the API did not switch to {version} within {timeout_s}s")
        time.sleep(0.05)
    return time.monotonic() - started


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "datasets"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=0.0,
        help="NLP_RATE_LIMIT_PER_S of the server started (0 = off, the default here; the service's is 50)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        registry = Path(tmp) / "models"
        shutil.copytree(REPO / "models", registry)
        original = training("show", "sentiment", registry=registry)
        print(original)
        t0 = time.monotonic()
        training("defaults", "--only", "sentiment", "--data", args.data, "--quiet", registry=registry)
        print(f"retrained in {time.monotonic() - t0:.0f}s")
        print(training("list", registry=registry))
        versions = sorted(p.name for p in (registry / "sentiment").iterdir() if p.is_dir())
        old = json.loads((registry / "sentiment" / "registry.json").read_text()).get("active")
        new = max(versions, key=lambda v: int(v[1:]) if v[1:].isdigit() else -1)
        if old is None or old == new:
            old = [v for v in versions if v != new][-1]
            training("promote", "sentiment", old, registry=registry)
        print(training("show", "sentiment", new, registry=registry))

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "NLP_MODELS_DIR": str(registry),
            "NLP_REGISTRY_POLL_S": "0.5",
            "NLP_RATE_LIMIT_PER_S": str(args.rate_limit),
        }
        server = start_server(port, env, Path(tmp) / "var")
        clients = Clients(url, args.clients, realistic_comments(500, seed=3))
        try:
            clients.start()
            wait_for_version(clients, old)
            time.sleep(3)
            training("promote", "sentiment", new, registry=registry)
            switched = wait_for_version(clients, new)
            print(f"promote {new}: served after {switched:.1f}s")
            time.sleep(3)
            training("rollback", "sentiment", registry=registry)
            back = wait_for_version(clients, old)
            print(f"rollback to {old}: served after {back:.1f}s")
            time.sleep(3)
        finally:
            clients.stop()
            server.terminate()
            server.wait(30)
    total = sum(clients.statuses.values())
    throttled = clients.statuses.get(429, 0)
    failed = total - clients.statuses.get(200, 0) - throttled
    print(f"\nrequests: {total}, by status: {dict(clients.statuses)}")
    print(f"throttled (429, not failures): {throttled}, failed: {failed}")
    print("sentiment versions served, in order:", " -> ".join(v for _, v in clients.versions))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
