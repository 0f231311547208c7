"""Live servers for a test module: real `cargohold serve` subprocesses, or an ASGI application
served in a thread of the test process (for tests that reach into the server: a clock to move).

`live_servers` (tests/conftest.py) hands a module one `LiveServers`; each module names the
server it needs in a fixture of its own that asks it for one, with the options it needs:

    @pytest.fixture(scope="module")
    def server(live_servers: LiveServers) -> RegistryServer:
        return live_servers.start("audit-server")

Every server a module started is stopped when the module ends. A subprocess must exit cleanly on
SIGTERM (uvicorn finishes its graceful shutdown and `serve` exits 0), or the module's last test
fails with the server's log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import pytest

from support.inprocess import serving
from support.server import RegistryServer, ServerError, free_port

#: How `cargohold serve` ends on SIGTERM, with one worker or several.
CLEAN_EXITS = (0,)

App = TypeVar("App")


@dataclass(frozen=True)
class Served(Generic[App]):
    """An application served in a thread, and its URL."""

    app: App
    url: str


class LiveServers:
    """Starts servers on demand and stops them all when `close()` is called."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._stack = contextlib.ExitStack()
        self._servers: list[RegistryServer] = []

    def start(self, name: str, *, extra_args: tuple[str, ...] = ()) -> RegistryServer:
        """`cargohold serve` in a fresh directory (`<tmp>/<name>/data`, log next to it), with
        `extra_args` after the usual ones."""
        root = self._tmp.mktemp(name)
        server = RegistryServer(root / "data", root / "server.log", extra_args=extra_args)
        self._servers.append(server)
        server.start()
        return server

    def in_thread(self, name: str, make_app: Callable[[Path, str], App]) -> Served[App]:
        """Serve `make_app(directory, url)` in a thread on a free loopback port, `directory`
        being a fresh directory for its data and `url` the address it is served at."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        app = make_app(self._tmp.mktemp(name), url)
        self._stack.enter_context(serving(app, port))
        return Served(app, url)

    def close(self) -> None:
        """Stop every server; fail if a subprocess did not exit cleanly on SIGTERM."""
        failures: list[str] = []
        try:
            for server in self._servers:
                if not server.running:
                    continue
                try:
                    code = server.stop()
                except ServerError as exc:
                    failures.append(str(exc))
                    continue
                if code not in CLEAN_EXITS:
                    failures.append(
                        f"the server on {server.host} exited with {code} on SIGTERM "
                        f"(expected 0)\n{server.log_tail()}"
                    )
        finally:
            self._stack.close()
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)
