"""A real uvicorn server in a child process for end-to-end tests: the app (on the tests' fake engine, or the
real one) with settings from ``NLP_*`` environment variables; stopped with its process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from nlp_service.config import REPO_ROOT

SERVER = """
import sys, uvicorn
from nlp_service.config import Settings
from nlp_service.main import create_app
engine = None
if sys.argv[2] == "fake":
    from tests.conftest import FakeEngine
    engine = FakeEngine()
port = int(sys.argv[1])
uvicorn.run(create_app(Settings(), engine=engine), host="127.0.0.1", port=port, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    env: dict[str, str], log: Path, *, fake_engine: bool = True, timeout_s: float = 120.0
) -> Iterator[str]:
    """Start the server with ``env`` added to the environment; yields its URL once ``/health`` is 200."""
    port = free_port()
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        "NLP_LOG_FORMAT": "text",
        **env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port), "fake" if fake_engine else "real"],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
