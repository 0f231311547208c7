"""The values each process counts (`cargohold.metrics`), in prometheus-client's metric types.

Request latencies are counted per bucket by the middleware and added in batches, one increment
per bucket. prometheus-client's `Histogram` has no public way to add a batch (only `observe`,
two shared-memory writes per request), so the workers keep the buckets as a plain counter
(`cargohold_request_latency_buckets_total{front,route,le}`, not cumulative) with a counter of
their sum, and the scraping process turns them into the histogram
`cargohold_request_duration_seconds` (`histograms_of`). Jobs and scans are rare: theirs are
ordinary histograms.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)
BUCKETS_WITH_INF = (*BUCKETS, float("inf"))
#: The `le` label of each bucket, as Prometheus writes it.
LE = tuple("+Inf" if bound == float("inf") else str(bound) for bound in BUCKETS_WITH_INF)
#: Jobs and scans: from a hundredth of a second to an hour.
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

_RAW_BUCKETS = "cargohold_request_latency_buckets"
_RAW_SUM = "cargohold_request_latency_seconds"
HISTOGRAM = "cargohold_request_duration_seconds"


class Instruments:
    """The metrics of one process (values in the multiprocess files when metrics are on)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        def counter(name: str, text: str, labels: Sequence[str] = ()) -> Any:
            return Counter(name, text, labels, registry=None)

        self.requests = counter("cargohold_requests", "HTTP requests", ["front", "route", "status"])
        self.latency_buckets = counter(
            _RAW_BUCKETS, "requests per latency bucket (not cumulative)", ["front", "route", "le"]
        )
        self.latency_sum = counter(_RAW_SUM, "latencies of the requests added", ["front", "route"])
        self.received = counter("cargohold_request_bytes_received", "request body bytes")
        self.sent = counter("cargohold_response_bytes_sent", "response body bytes")
        self.denials = counter(
            "cargohold_authorization_denials", "requests the authorizer denied", ["action"]
        )
        self.authentication_failures = counter(
            "cargohold_authentication_failures",
            "credentials presented and rejected, by the operation attempted",
            ["action"],
        )
        self.cache_hits = counter(
            "cargohold_cache_hits", "read cache lookups answered from the cache", ["cache"]
        )
        self.cache_misses = counter(
            "cargohold_cache_misses", "read cache lookups that went to the database", ["cache"]
        )
        self.job_duration = Histogram(
            "cargohold_job_duration_seconds",
            "runs of background jobs, by kind",
            ["kind"],
            buckets=JOB_BUCKETS,
            registry=None,
        )
        self.job_failures = counter(
            "cargohold_job_failures", "runs of a job whose handler failed", ["kind"]
        )
        self.scans = counter("cargohold_scans", "scans ended, by status", ["status"])
        self.scan_duration = Histogram(
            "cargohold_scan_duration_seconds",
            "scans run to their end, by status",
            ["status"],
            buckets=JOB_BUCKETS,
            registry=None,
        )
        self.scan_findings = counter(
            "cargohold_scan_findings", "findings of the scans ended, by severity", ["severity"]
        )
        self.event_deliveries = counter(
            "cargohold_event_deliveries",
            "attempts to deliver an event to a webhook target, by result",
            ["target", "result"],
        )
        self.event_delivery_lag = Histogram(
            "cargohold_event_delivery_lag_seconds",
            "from an event's commit to a target's acceptance of it",
            ["target"],
            buckets=JOB_BUCKETS,
            registry=None,
        )

    def add_latencies(self, front: str, route: str, buckets: Sequence[int], seconds: float) -> None:
        """Requests per bucket of `BUCKETS_WITH_INF` and the sum of their latencies."""
        for index, count in enumerate(buckets):
            if count:
                self.latency_buckets.labels(front, route, LE[index]).inc(count)
        self.latency_sum.labels(front, route).inc(seconds)

    def job_finished(self, kind: str, seconds: float, *, failed: bool) -> None:
        self.job_duration.labels(kind).observe(seconds)
        if failed:
            self.job_failures.labels(kind).inc()

    def scan_finished(
        self, status: str, seconds: float | None, severities: Mapping[str, int]
    ) -> None:
        self.scans.labels(status).inc()
        if seconds is not None:
            self.scan_duration.labels(status).observe(seconds)
        for severity, count in severities.items():
            if count:
                self.scan_findings.labels(severity).inc(count)

    def event_sent(self, target: str, *, delivered: bool, lag: float) -> None:
        self.event_deliveries.labels(target, "delivered" if delivered else "failed").inc()
        if delivered:
            self.event_delivery_lag.labels(target).observe(max(lag, 0.0))

    def decisions_recorded(self, denials: Mapping[str, int], failures: Mapping[str, int]) -> None:
        for action, count in denials.items():
            self.denials.labels(action).inc(count)
        for action, count in failures.items():
            self.authentication_failures.labels(action).inc(count)


def histograms_of(families: Iterable[Any]) -> Iterator[Any]:
    """`families` (as the multiprocess collector reads them), with the latency buckets and sums
    replaced by the histogram `cargohold_request_duration_seconds{front,route}`."""
    from prometheus_client.core import HistogramMetricFamily

    per_bucket: dict[tuple[str, str], dict[str, float]] = {}
    sums: dict[tuple[str, str], float] = {}
    for family in families:
        if family.name not in (_RAW_BUCKETS, _RAW_SUM):
            yield family
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            key = (sample.labels["front"], sample.labels["route"])
            if family.name == _RAW_SUM:
                sums[key] = sums.get(key, 0.0) + sample.value
            else:
                found = per_bucket.setdefault(key, {})
                le = sample.labels["le"]
                found[le] = found.get(le, 0.0) + sample.value
    histogram = HistogramMetricFamily(
        HISTOGRAM, "time from request to the end of the response", labels=["front", "route"]
    )
    for key in sorted(per_bucket.keys() | sums.keys()):
        found = per_bucket.get(key, {})
        cumulative: list[tuple[str, float]] = []
        total = 0.0
        for le in LE:
            total += found.get(le, 0.0)
            cumulative.append((le, total))
        histogram.add_metric(list(key), cumulative, sums.get(key, 0.0))
    yield histogram
