"""The task credentials endpoint the agent serves on loopback, as ECS's agent does.

Each task whose definition names a `taskRoleArn` is given `AWS_CONTAINER_CREDENTIALS_FULL_URI`
(this endpoint) and `AWS_CONTAINER_AUTHORIZATION_TOKEN` (a random token of its own). A GET with
that token in `Authorization` answers the task role's session, refreshed before it expires;
a request with any other token gets nothing, so one task never reads another's credentials.
Containers reach it on the host's loopback, so with `networkMode: host`.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cargohold.agent.control import CredentialsError, RefreshingCredentials

log = logging.getLogger(__name__)

PATH = "/v1/credentials"


class CredentialsEndpoint:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._tasks: dict[str, RefreshingCredentials] = {}
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("credentials endpoint: " + format, *args)

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, credentials: RefreshingCredentials) -> dict[str, str]:
        """Serve a task's credentials; the variables its containers get."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tasks[token] = credentials
        return {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.url,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": token,
        }

    def remove(self, variables: dict[str, str]) -> None:
        with self._lock:
            self._tasks.pop(variables.get("AWS_CONTAINER_AUTHORIZATION_TOKEN", ""), None)

    def _find(self, given: str) -> RefreshingCredentials | None:
        with self._lock:
            for token, credentials in self._tasks.items():
                if hmac.compare_digest(token.encode(), given.encode()):
                    return credentials
        return None

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        if request.path != PATH:
            return _answer(request, 404, {"code": "NotFound", "message": "no such endpoint"})
        found = self._find(request.headers.get("Authorization", ""))
        if found is None:
            message = "Invalid or missing authorization token"
            return _answer(request, 401, {"code": "AccessDenied", "message": message})
        try:
            credentials = found.get()
        except CredentialsError as exc:
            return _answer(request, 500, {"code": "InternalError", "message": str(exc)})
        _answer(request, 200, credentials.endpoint_document())


def _answer(request: BaseHTTPRequestHandler, status: int, document: dict[str, str]) -> None:
    body = json.dumps(document).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)
