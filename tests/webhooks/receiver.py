"""A real local webhook receiver for tests, benchmarks and the fault script (threaded ``http.server``).

It records every request, answers from a script (a list of responses, then a default), can be slow, can be
"down" (connections refused: the socket is closed), and deduplicates by ``webhook-id`` like a good receiver.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 256  # many workers connect at once; the default backlog (5) drops SYNs

    def handle_error(self, request: object, client_address: object) -> None:
        """A client gone mid-response (a killed worker) is expected here; stay silent."""


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def msg_id(self) -> str:
        return self.headers.get("webhook-id", "")


class LocalReceiver:
    """``with LocalReceiver() as rx: rx.url ...``; ``rx.script([Reply(500), Reply(500)])`` then 200s."""

    def __init__(
        self,
        *,
        delay_s: float = 0.0,
        default: Reply | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.delay_s = delay_s
        self.host = host
        self.tls = tls  # serve HTTPS with this server context; ``sni`` records the names clients asked for
        self.sni: list[str | None] = []
        self.default = default or Reply()
        self.requests: list[Received] = []
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> LocalReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on keep-alive connections

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                reply = receiver._record(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

        server = _QuietServer((self.host, self._port), Handler)
        server.daemon_threads = True
        if self.tls is not None:
            self.tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)  # type: ignore[assignment,misc]
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket: later connections are refused (the receiver is "down")."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self._port}/hook"

    # behaviour
    def script(self, replies: list[Reply]) -> None:
        """Answer the next requests with ``replies`` in order, then with the default."""
        with self._lock:
            self._script = list(replies)

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._lock:
            self.requests.append(Received(path, headers, body, time.time()))
            return self._script.pop(0) if self._script else self.default

    # what was seen
    def ids(self) -> Counter[str]:
        with self._lock:
            return Counter(r.msg_id for r in self.requests)

    def unique_ids(self) -> set[str]:
        """What a receiver deduplicating on ``webhook-id`` processed (each event exactly once)."""
        return set(self.ids())

    def wait_for(self, count: int, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return True
            time.sleep(0.01)
        return False
