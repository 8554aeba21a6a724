"""The benchmarks' server harness: start the API as a subprocess on a free port, and watch its RSS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, env_extra: dict[str, str], var_dir: Path) -> subprocess.Popen:
    """``nlp-service serve`` on ``port`` with its state in ``var_dir``; returns once /health answers 200."""
    env = {**os.environ, "NLP_PORT": str(port), "NLP_VAR_DIR": str(var_dir), "NLP_LOG_LEVEL": "warning"}
    env.update(env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "nlp_service.cli", "serve"], env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not become ready")


class PeakRss:
    """Samples a process's RSS every 50 ms from construction until ``stop``."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.start_mb = self.proc.memory_info().rss / 2**20
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def stop(self, *, high_water_mark: bool = True) -> float:
        """Peak RSS in MiB; with ``high_water_mark`` also the kernel's VmHWM (peaks before sampling began)."""
        self._stop.set()
        self._thread.join()
        if high_water_mark:
            try:
                for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)
            except OSError:
                pass
        return self.peak / 2**20
