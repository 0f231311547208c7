"""Prometheus metrics, on a port of their own.

`metrics_port` (0, the default: no metrics) opens `/metrics` in the Prometheus text format on
`metrics_host` (default 127.0.0.1), a listener separate from the registry's: whoever can reach
the registry's port cannot read them, and the operator decides who reaches the metrics port (on
loopback, only this machine). It is served by the `serve` process itself, with
`prometheus-client`'s multiprocess mode: every worker of `--workers N` writes its values to
files in `<data_dir>/metrics/`, and a scrape adds them up, so the view is one and consistent.
What the database knows (open uploads, the job queue, storage bytes) is read by the `serve`
process alone, in the background (`cargohold.metrics_gauges`).

The metrics, all prefixed `cargohold_`, are listed in the README ("Monitoring").

The cost per request is two clock readings, a dictionary lookup and a few integer additions
(`Metrics.__call__`; the request's body size is read from its `content-length` unless it is a
GET or HEAD): the request is classified and counted at once, into plain integers that
hold nothing of the request, and every `FLUSH_INTERVAL` seconds what was counted is added to the
shared values with one write per label set and bucket. (Keeping the requests themselves until the
flush, as an earlier version did, kept thousands of objects alive past the young garbage
collection generations, and the full collections they caused cost more than the counting.)
"""

from __future__ import annotations

import asyncio
import bisect
import os
import shutil
import time
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from cargohold.config import Config
from cargohold.metrics_instruments import (
    BUCKETS_WITH_INF,
    Instruments,
    histograms_of,
)
from cargohold.service.readcache import CACHE_COUNTS

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


class Scrapes:
    """The metrics listener (a thread of `serve`) and the refresher of the database's gauges."""

    def __init__(self, config: Config) -> None:
        from prometheus_client import CollectorRegistry, start_http_server

        from cargohold.metrics_gauges import DatabaseCollector, Refresher

        registry = CollectorRegistry()
        registry.register(_WorkerCollector(metrics_dir(config)))
        database = DatabaseCollector()
        registry.register(database)
        self.refresher = Refresher(config, database)
        self.refresher.start()
        self.server, _thread = start_http_server(config.metrics_port, config.metrics_host, registry)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.refresher.stop()


class _WorkerCollector:
    """The workers' values, added up from their files (prometheus-client's
    `MultiProcessCollector`), with the request latency buckets turned into a histogram."""

    def __init__(self, directory: Path) -> None:
        from prometheus_client.multiprocess import MultiProcessCollector

        self._files = MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Any]:
        return histograms_of(self._files.collect())  # type: ignore[no-untyped-call]


def serve_metrics(config: Config) -> Scrapes | None:
    """Start the metrics listener; returns what `stop` closes."""
    return Scrapes(config) if config.metrics_port else None


def stop(scrapes: Scrapes | None) -> None:
    if scrapes is not None:
        scrapes.close()


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
#: Paths whose route is remembered (a pull asks for the same few manifests again and again).
_KNOWN_PATHS = 4096


_BODILESS = frozenset({"GET", "HEAD"})


class _Counts:
    """What one route served since the last flush: requests per status class (index 1-5),
    latencies per bucket, their sum."""

    __slots__ = ("buckets", "front", "route", "seconds", "statuses")

    def __init__(self, front: str, route: str) -> None:
        self.front = front
        self.route = route
        self.statuses = [0] * 6
        self.buckets = [0] * len(BUCKETS_WITH_INF)
        self.seconds = 0.0


class Metrics:
    """ASGI middleware counting requests (see the module's docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.instruments = Instruments()
        self._by_route: dict[tuple[str, str], _Counts] = {}
        self._by_path: dict[str, _Counts] = {}
        self._received = 0
        self._sent = 0
        self._caches: dict[str, tuple[int, int]] = {}
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

        try:
            await self.app(scope, receive, sending)
        finally:
            self._count(scope, response[0], time.perf_counter() - started, response[1])

    def _count(self, scope: Scope, status: int, seconds: float, sent: int) -> None:
        counts = self._by_path.get(scope["path"])
        if counts is None:
            counts = self._counts_of(scope)
        counts.statuses[status // 100 if status < 600 else 5] += 1
        counts.buckets[bisect.bisect_left(BUCKETS_WITH_INF, seconds)] += 1
        counts.seconds += seconds
        self._sent += sent
        if scope["method"] not in _BODILESS:
            self._received += _length(scope["headers"])
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)

    def _counts_of(self, scope: Scope) -> _Counts:
        """The counts of the request's route, remembered by path (but for the API's `/`, whose
        operation is in a header)."""
        route = _route(scope)
        counts = self._by_route.get(route)
        if counts is None:
            counts = self._by_route[route] = _Counts(*route)
        path: str = scope["path"]
        if path != "/":
            if len(self._by_path) >= _KNOWN_PATHS:
                self._by_path.clear()
            self._by_path[path] = counts
        return counts

    def flush(self) -> None:
        """Add what was counted since the last flush to the shared values."""
        self._flush = None
        instruments = self.instruments
        for counts in self._by_route.values():
            if not any(counts.statuses):
                continue
            statuses, buckets, seconds = counts.statuses, counts.buckets, counts.seconds
            counts.statuses, counts.buckets = [0] * 6, [0] * len(BUCKETS_WITH_INF)
            counts.seconds = 0.0
            front, route = counts.front, counts.route
            for status_class, number in enumerate(statuses):
                if number:
                    instruments.requests.labels(front, route, f"{status_class}xx").inc(number)
            instruments.add_latencies(front, route, buckets, seconds)
        if self._received:
            instruments.received.inc(self._received)
        if self._sent:
            instruments.sent.inc(self._sent)
        self._received = self._sent = 0
        self.flush_caches()

    def flush_caches(self) -> None:
        """Add the read caches' hits and misses since the last time."""
        for name, counts in list(CACHE_COUNTS.items()):
            hits, misses = self._caches.get(name, (0, 0))
            if counts.hits > hits:
                self.instruments.cache_hits.labels(name).inc(counts.hits - hits)
            if counts.misses > misses:
                self.instruments.cache_misses.labels(name).inc(counts.misses - misses)
            self._caches[name] = (counts.hits, counts.misses)


class Observer:
    """The services' `ports.Observer`, counting into the instruments."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._instruments = metrics.instruments

    def job_finished(self, kind: str, seconds: float, *, failed: bool) -> None:
        self._instruments.job_finished(kind, seconds, failed=failed)
        self._metrics.flush_caches()  # a job's cache reads are seen without waiting for requests

    def scan_finished(
        self, status: str, seconds: float | None, severities: Mapping[str, int]
    ) -> None:
        self._instruments.scan_finished(status, seconds, severities)

    def decisions_recorded(self, denials: Mapping[str, int], failures: Mapping[str, int]) -> None:
        self._instruments.decisions_recorded(denials, failures)

    def event_sent(self, target: str, *, delivered: bool, lag: float) -> None:
        self._instruments.event_sent(target, delivered=delivered, lag=lag)


def wrap(app: Any, config: Config) -> Any:
    """`app` with its requests counted, and its jobs, scans and decisions reported (through
    its `observer`), when `metrics_port` is set."""
    if not config.metrics_port:
        return app
    metrics = Metrics(app)
    if hasattr(app, "observer"):
        app.observer = Observer(metrics)
    return metrics
