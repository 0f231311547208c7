"""`/health/live` and `/health/ready`, for load balancers: no authentication, no details an
outsider could use (the reasons go to the log).

- live: the process serves requests (200).
- ready: the metadata database and the blob store both answer, each within `timeout`
  (200; otherwise 503 with Retry-After, and which of the two failed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import anyio
from starlette.requests import Request
from starlette.responses import Response

from cargohold.http.unavailable import HEADERS
from cargohold.ports import StorageDriver

log = logging.getLogger(__name__)

LIVE = "/health/live"
READY = "/health/ready"
PATHS = (LIVE, READY)


def _json(body: dict[str, str], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body),
        status,
        headers={"Cache-Control": "no-store", **(headers or {})},
        media_type="application/json",
    )


class Health:
    def __init__(
        self,
        ping_database: Callable[[], Awaitable[None]],
        storage: StorageDriver,
        *,
        timeout: float = 3.0,
    ) -> None:
        self._ping_database = ping_database
        self._storage = storage
        self._timeout = timeout

    async def __call__(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _json({"status": "method not allowed"}, 405, {"Allow": "GET, HEAD"})
        if request.url.path == LIVE:
            return _json({"status": "live"}, 200)
        results: dict[str, str] = {}

        async def check(name: str, probe: Callable[[], Awaitable[None]]) -> None:
            try:
                with anyio.fail_after(self._timeout):
                    await probe()
            except Exception as exc:
                log.warning("not ready: the %s fails: %s", name, exc)
                results[name] = "unavailable"
            else:
                results[name] = "ok"

        async with anyio.create_task_group() as group:
            group.start_soon(check, "database", self._ping_database)
            group.start_soon(check, "storage", self._storage.check)
        ready = all(value == "ok" for value in results.values())
        body = {"status": "ready" if ready else "unavailable", **dict(sorted(results.items()))}
        return _json(body, 200) if ready else _json(body, 503, HEADERS)
