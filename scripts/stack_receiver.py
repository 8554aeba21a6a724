"""A webhook receiver for the stack smoke test (runs in its own container from the service image).

    python3 stack_receiver.py            # listens on :8080

- ``POST /hook``: a delivery. Its signature is verified with the secret set through ``/_config`` (Standard
  Webhooks, the service's own ``verify``); the first delivery is held for ``hold_first_s`` seconds before the
  200 (so the smoke test can kill the worker mid-delivery), later ones are answered at once.
- ``POST /_config`` ``{"secret": "whsec_...", "hold_first_s": 30}``; ``GET /_received``: every request seen,
  with ``webhook_id``, ``type``, ``verified`` and whether the answer went out (``answered``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nlp_service.webhooks.signing import verify

STATE: dict[str, Any] = {"secret": None, "hold_first_s": 0.0, "received": []}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path != "/_received":
            return self._json(404, {"error": "not found"})
        with LOCK:
            return self._json(200, STATE["received"])

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/_config":
            with LOCK:
                STATE.update(json.loads(body))
            return self._json(200, {"ok": True})
        if self.path != "/hook":
            return self._json(404, {"error": "not found"})
        headers = {k.lower(): v for k, v in self.headers.items()}
        with LOCK:
            secret, first = STATE["secret"], not STATE["received"]
            entry = {
                "webhook_id": headers.get("webhook-id"),
                "type": json.loads(body).get("type"),
                "verified": bool(secret) and _verified(secret, headers, body),
                "at": time.time(),
                "answered": False,
            }
            STATE["received"].append(entry)
        if first and STATE["hold_first_s"]:
            time.sleep(float(STATE["hold_first_s"]))
        self._json(200, {"ok": True})
        with LOCK:
            entry["answered"] = True


def _verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        verify(secret, headers, body)
    except Exception:
        return False
    return True


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
