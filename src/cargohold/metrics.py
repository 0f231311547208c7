"""Prometheus metrics, on a port of their own.

`metrics_port` (0, the default: no metrics) opens `/metrics` in the Prometheus text format on
`metrics_host` (default 127.0.0.1), a listener separate from the registry's: whoever can reach
the registry's port cannot read them, and the operator decides who reaches the metrics port (on
loopback, only this machine). It is served by the `serve` process itself, with
`prometheus-client`'s multiprocess mode: every worker of `--workers N` writes its values to
files in `<data_dir>/metrics/`, and a scrape adds them up, so the view is one and consistent.

Metrics (all prefixed `cargohold_`):
- `requests_total{front,route,status}` and `request_duration_seconds{front,route}`: per front
  (`oci` for /v2/, `aws` for the API, `other`), route (the /v2/ kind: `base`, `manifests`,
  `blobs`, `uploads`, `tags`, `referrers`; the API's `X-Amz-Target` operation) and status class;
- `request_bytes_received_total` and `response_bytes_sent_total`, from the `content-length`s;
- `authorization_denials_total{action}` and `authentication_failures_total{action}`.

Per request the cost is two clock readings, a context variable and an append to a list: the
requests are added to the shared values in batches, every half second (`Metrics.flush`).
"""

from __future__ import annotations

import asyncio
import bisect
import os
import shutil
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from cargohold.config import Config
from cargohold.service.audit import REQUEST_DECISIONS
from cargohold.service.authz import AuthenticationFailure

Scope = MutableMapping[str, Any]

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_V2_ROUTES = frozenset({"manifests", "blobs", "tags", "referrers"})


def metrics_dir(config: Config) -> Path:
    return config.data_path / "metrics"


def prepare(config: Config) -> None:
    """Before any worker starts: an empty directory for the processes' values, named in the
    environment the workers inherit (prometheus-client reads it when first imported)."""
    if not config.metrics_port:
        return
    directory = metrics_dir(config)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    os.environ[MULTIPROCESS_VARIABLE] = str(directory)


def serve_metrics(config: Config) -> Any:
    """Start the metrics listener (a thread of this process); returns the server to close."""
    if not config.metrics_port:
        return None
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    server, _thread = start_http_server(config.metrics_port, config.metrics_host, registry)
    return server


def stop(server: Any) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)
BUCKETS_WITH_INF = (*BUCKETS, float("inf"))


class _Instruments:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.requests = Counter("cargohold_requests", "HTTP requests", ["front", "route", "status"])
        self.duration = Histogram(
            "cargohold_request_duration_seconds",
            "time from request to the end of the response",
            ["front", "route"],
            buckets=BUCKETS,
        )
        self.received = Counter("cargohold_request_bytes_received", "request body bytes")
        self.sent = Counter("cargohold_response_bytes_sent", "response body bytes")
        self.denials = Counter(
            "cargohold_authorization_denials", "requests the authorizer denied", ["action"]
        )
        self.authentication_failures = Counter(
            "cargohold_authentication_failures",
            "credentials presented and rejected, by the operation attempted",
            ["action"],
        )

    def observe_many(self, histogram: Any, observed: list[float]) -> None:
        """`histogram.observe` for each of `observed`, with one shared-memory write per bucket
        and one for the sum instead of two per observation (the child's bucket and sum values
        are prometheus-client's `_buckets` and `_sum`)."""
        per_bucket = [0] * len(BUCKETS_WITH_INF)
        for seconds in observed:
            per_bucket[bisect.bisect_left(BUCKETS_WITH_INF, seconds)] += 1
        for index, count in enumerate(per_bucket):
            if count:
                histogram._buckets[index].inc(count)
        histogram._sum.inc(sum(observed))


def _route(scope: Scope) -> tuple[str, str]:
    path: str = scope["path"]
    if path.startswith("/v2/") or path == "/v2":
        parts = path.rstrip("/").split("/")
        if len(parts) <= 2:
            return "oci", "base"
        if parts[-2] == "uploads" or parts[-1] == "uploads":
            return "oci", "uploads"
        kind = parts[-2] if len(parts) >= 3 else ""
        return "oci", kind if kind in _V2_ROUTES else "other"
    if path == "/":
        for name, value in scope.get("headers", ()):
            if name == b"x-amz-target":
                return "aws", value.decode("latin-1").rpartition(".")[2][:64]
        return "aws", "query"
    return "other", "other"


def _length(headers: Any) -> int:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


#: How often (seconds) the requests served are added to the shared values.
FLUSH_INTERVAL = 0.5


class Metrics:
    """ASGI middleware counting requests (see the module's docstring).

    A request only appends what it was (its scope, status, duration, bytes sent and the
    authorization decisions made for it) to a list; every `FLUSH_INTERVAL` seconds the list is
    classified and added to the shared values, so a scrape lags by at most that much."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.instruments = _Instruments()
        self._pending: list[tuple[Scope, int, float, int, list[Any]]] = []
        self._flush: Any = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        response = [500, 0]

        async def sending(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response[0] = message["status"]
                response[1] = _length(message.get("headers", ()))
            await send(message)

        decisions = REQUEST_DECISIONS.get()
        token = None
        if decisions is None:
            decisions = []
            token = REQUEST_DECISIONS.set(decisions)
        try:
            await self.app(scope, receive, sending)
        finally:
            if token is not None:
                REQUEST_DECISIONS.reset(token)
            self._pending.append(
                (scope, response[0], time.perf_counter() - started, response[1], decisions)
            )
            if self._flush is None:
                self._flush = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        self._flush = None
        pending, self._pending = self._pending, []
        instruments = self.instruments
        counts: dict[tuple[str, str, int], int] = {}
        durations: dict[tuple[str, str], list[float]] = {}
        received = sent = 0
        for scope, status, seconds, response_bytes, decisions in pending:
            front, route = _route(scope)
            key = (front, route, status // 100)
            counts[key] = counts.get(key, 0) + 1
            durations.setdefault((front, route), []).append(seconds)
            received += _length(scope.get("headers", ()))
            sent += response_bytes
            for decision in decisions:
                if isinstance(decision, AuthenticationFailure):
                    instruments.authentication_failures.labels(decision.event_name).inc()
                elif not decision.decision.allowed:
                    instruments.denials.labels(decision.action).inc()
        for (front, route, status_class), count in counts.items():
            instruments.requests.labels(front, route, f"{status_class}xx").inc(count)
        for (front, route), observed in durations.items():
            instruments.observe_many(instruments.duration.labels(front, route), observed)
        if received:
            instruments.received.inc(received)
        if sent:
            instruments.sent.inc(sent)


def wrap(app: Any, config: Config) -> Any:
    return Metrics(app) if config.metrics_port else app
