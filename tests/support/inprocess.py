"""An ASGI application served by uvicorn in a thread of the test process, on a loopback port.

For tests that must reach into the server while it runs (move its clock, swap a part); tests of
the server as users run it use `support.server.RegistryServer`, a real subprocess.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from support.waiting import wait_until


@contextmanager
def serving(app: Any, port: int, *, timeout: float = 30.0) -> Iterator[None]:
    """Serve `app` (lifespan on) on 127.0.0.1:`port` until the block ends."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive(), "the test server stopped while starting"
        return bool(server.started)

    wait_until(started, timeout=timeout, interval=0.02, message="the test server did not start")
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
