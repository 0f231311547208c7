"""The workers' latency buckets become one histogram in the scraping process."""

from __future__ import annotations

from typing import Any

from cargohold.metrics_instruments import (
    BUCKETS_WITH_INF,
    HISTOGRAM,
    LE,
    Instruments,
    histograms_of,
)


def samples_of(families: list[Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }


def test_the_buckets_and_sums_of_the_workers_make_a_cumulative_histogram() -> None:
    first, second = Instruments(), Instruments()  # as two workers count
    per_bucket = [0] * len(BUCKETS_WITH_INF)
    per_bucket[0], per_bucket[3], per_bucket[-1] = 2, 1, 1
    first.add_latencies("oci", "manifests", per_bucket, 100.5)
    second.add_latencies("oci", "manifests", [1] + [0] * (len(BUCKETS_WITH_INF) - 1), 0.5)
    first.requests.labels("oci", "manifests", "2xx").inc(5)
    families = [
        *first.latency_buckets.collect(),
        *second.latency_buckets.collect(),
        *first.latency_sum.collect(),
        *second.latency_sum.collect(),
        *first.requests.collect(),
    ]
    out = list(histograms_of(families))
    names = [family.name for family in out]
    assert names == ["cargohold_requests", HISTOGRAM]
    found = samples_of(out)
    labels = (("front", "oci"), ("route", "manifests"))

    def bucket(le: str) -> float:
        return found[(f"{HISTOGRAM}_bucket", tuple(sorted((*labels, ("le", le)))))]

    assert bucket(LE[0]) == 3
    assert bucket(LE[2]) == 3
    assert bucket(LE[3]) == 4
    assert bucket("+Inf") == 5
    assert found[(f"{HISTOGRAM}_count", labels)] == 5
    assert found[(f"{HISTOGRAM}_sum", labels)] == 101.0


def test_jobs_scans_and_decisions_are_counted() -> None:
    instruments = Instruments()
    instruments.job_finished("gc", 0.2, failed=False)
    instruments.job_finished("gc", 0.3, failed=True)
    instruments.scan_finished("COMPLETE", 1.5, {"HIGH": 2, "LOW": 0})
    instruments.scan_finished("FAILED", None, {})
    instruments.decisions_recorded({"ecr:PutImage": 2}, {"Authenticate": 1})
    instruments.event_sent("ci", delivered=False, lag=0.0)
    instruments.event_sent("ci", delivered=True, lag=0.25)
    found = samples_of(
        [
            *instruments.job_duration.collect(),
            *instruments.job_failures.collect(),
            *instruments.scans.collect(),
            *instruments.scan_duration.collect(),
            *instruments.scan_findings.collect(),
            *instruments.denials.collect(),
            *instruments.authentication_failures.collect(),
            *instruments.event_deliveries.collect(),
            *instruments.event_delivery_lag.collect(),
        ]
    )
    assert found[("cargohold_job_duration_seconds_count", (("kind", "gc"),))] == 2
    assert found[("cargohold_job_failures_total", (("kind", "gc"),))] == 1
    assert found[("cargohold_scans_total", (("status", "COMPLETE"),))] == 1
    assert found[("cargohold_scans_total", (("status", "FAILED"),))] == 1
    assert found[("cargohold_scan_duration_seconds_count", (("status", "COMPLETE"),))] == 1
    assert ("cargohold_scan_duration_seconds_count", (("status", "FAILED"),)) not in found
    assert found[("cargohold_scan_findings_total", (("severity", "HIGH"),))] == 2
    assert ("cargohold_scan_findings_total", (("severity", "LOW"),)) not in found
    assert found[("cargohold_authorization_denials_total", (("action", "ecr:PutImage"),))] == 2
    assert found[("cargohold_authentication_failures_total", (("action", "Authenticate"),))] == 1
    for result in ("delivered", "failed"):
        labels = (("result", result), ("target", "ci"))
        assert found[("cargohold_event_deliveries_total", labels)] == 1
    assert found[("cargohold_event_delivery_lag_seconds_sum", (("target", "ci"),))] == 0.25
