"""A webhook receiver on a loopback port, in a thread: it records every POST (headers and raw
body), answers 200 or the status a test sets, and can be taken down and brought back up on the
same port (down: nothing listens, so connections are refused)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cargohold.domain.webhooksigning import verify
from support.server import free_port


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def event(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document

    def signed_by(self, secret: bytes) -> bool:
        return verify(secret, self.headers, self.body, self.received_at)


class WebhookReceiver:
    def __init__(self, path: str = "/hook") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{path}"
        #: What was answered 2xx, in the order it arrived.
        self.accepted: list[Delivery] = []
        #: Every request, refused ones too.
        self.requests: list[Delivery] = []
        #: The status answered (200 unless a test sets another).
        self.status = 200
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                delivery = Delivery(dict(self.headers.items()), body, time.time())
                with receiver._lock:
                    status = receiver.status
                    receiver.requests.append(delivery)
                    if 200 <= status < 300:
                        receiver.accepted.append(delivery)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Nothing listens on the port until `start()` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [delivery.event for delivery in self.accepted]

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self.accepted)
