"""The request-counting middleware: each request classified and counted at once, added to the
shared values at the flush; the read caches' hits and misses; the observer it hands the app."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest

from cargohold.config import load
from cargohold.metrics import Metrics, Observer, wrap
from cargohold.ports import UNOBSERVED
from cargohold.service.readcache import CACHE_COUNTS, CacheCounts

pytestmark = pytest.mark.anyio


class App:
    """Answers every request with `status` and a 5-byte body."""

    def __init__(self) -> None:
        self.observer: Any = UNOBSERVED
        self.status = 200

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})


def scope(path: str, *headers: tuple[bytes, bytes], method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": list(headers)}


async def serve(metrics: Metrics, request: dict[str, Any]) -> list[MutableMapping[str, Any]]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await metrics(request, receive, send)
    return sent


def value(metric: Any, name: str, **labels: str) -> float:
    for family in metric.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def test_requests_are_counted_by_front_route_and_status_class() -> None:
    app = App()
    metrics = Metrics(app)
    requests = metrics.instruments.requests
    for _ in range(3):
        sent = await serve(metrics, scope("/v2/app/manifests/latest"))
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    app.status = 404
    await serve(
        metrics, scope("/v2/app/blobs/uploads/x", (b"content-length", b"7"), method="PATCH")
    )
    await serve(metrics, scope("/v2/app/blobs/sha256:abc", (b"content-length", b"9")))  # not read
    await serve(
        metrics, scope("/", (b"x-amz-target", b"AmazonEC2ContainerRegistry_V20150921.ListImages"))
    )
    await serve(metrics, scope("/v2/"))
    assert (
        value(requests, "cargohold_requests_total", front="oci", route="manifests", status="2xx")
        == 0
    )
    metrics.flush()
    assert (
        value(requests, "cargohold_requests_total", front="oci", route="manifests", status="2xx")
        == 3
    )
    assert (
        value(requests, "cargohold_requests_total", front="oci", route="uploads", status="4xx") == 1
    )
    assert (
        value(requests, "cargohold_requests_total", front="aws", route="ListImages", status="4xx")
        == 1
    )
    assert value(requests, "cargohold_requests_total", front="oci", route="base", status="4xx") == 1
    assert (
        value(requests, "cargohold_requests_total", front="oci", route="blobs", status="4xx") == 1
    )
    instruments = metrics.instruments
    assert value(instruments.sent, "cargohold_response_bytes_sent_total") == 7 * 5
    assert value(instruments.received, "cargohold_request_bytes_received_total") == 7
    buckets = instruments.latency_buckets
    counted = sum(
        sample.value
        for family in buckets.collect()
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["route"] == "manifests"
    )
    assert counted == 3
    metrics.flush()  # nothing new: nothing added
    assert (
        value(requests, "cargohold_requests_total", front="oci", route="manifests", status="2xx")
        == 3
    )


async def test_the_caches_hits_and_misses_are_added_at_the_flush() -> None:
    metrics = Metrics(App())
    counts = CACHE_COUNTS.setdefault("test-metrics", CacheCounts())
    counts.hits += 5
    counts.misses += 2
    metrics.flush()
    hits = value(metrics.instruments.cache_hits, "cargohold_cache_hits_total", cache="test-metrics")
    counts.hits += 1
    metrics.flush()
    instruments = metrics.instruments
    assert (
        value(instruments.cache_hits, "cargohold_cache_hits_total", cache="test-metrics")
        == hits + 1
    )
    assert (
        value(instruments.cache_misses, "cargohold_cache_misses_total", cache="test-metrics")
        == counts.misses
    )


def test_wrap_counts_only_when_a_metrics_port_is_set() -> None:
    app = App()
    assert wrap(app, load(overrides={"metrics_port": 0}, environ={})) is app
    assert app.observer is UNOBSERVED
    wrapped = wrap(app, load(overrides={"metrics_port": 9999}, environ={}))
    assert isinstance(wrapped, Metrics)
    assert isinstance(app.observer, Observer)
    app.observer.job_finished("gc", 0.1, failed=True)
    assert value(wrapped.instruments.job_failures, "cargohold_job_failures_total", kind="gc") == 1
