"""The database's gauges: read in the background by one thread, returned as last read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cargohold.config import load
from cargohold.metadata import database
from cargohold.metadata.gauges import DatabaseGauges
from cargohold.metrics_gauges import DatabaseCollector, Refresher
from support.waiting import wait_until


def samples_of(collector: DatabaseCollector) -> dict[tuple[str, tuple[Any, ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_nothing_is_reported_before_the_first_read() -> None:
    assert samples_of(DatabaseCollector()) == {}


def test_a_kind_once_seen_keeps_its_series_and_a_deleted_repository_goes() -> None:
    collector = DatabaseCollector()
    collector.update(
        DatabaseGauges(2, {"scan": 3}, {"scan": 1}, {("123456789012", "app"): 10}), now=5.0
    )
    found = samples_of(collector)
    assert found[("cargohold_upload_sessions_open", ())] == 2
    assert found[("cargohold_job_queue_depth", (("kind", "scan"),))] == 3
    assert found[("cargohold_jobs_running", (("kind", "scan"),))] == 1
    app = (("registry", "123456789012"), ("repository", "app"))
    assert found[("cargohold_repository_storage_bytes", app)] == 10
    assert found[("cargohold_database_metrics_refreshed_timestamp_seconds", ())] == 5.0
    collector.update(DatabaseGauges(0, {}, {}, {}), now=6.0)
    found = samples_of(collector)
    assert found[("cargohold_job_queue_depth", (("kind", "scan"),))] == 0
    assert ("cargohold_repository_storage_bytes", app) not in found


def test_the_refresher_reads_the_database_until_stopped(tmp_path: Path) -> None:
    config = load(overrides={"data_dir": str(tmp_path), "metrics_refresh_seconds": 0.1}, environ={})
    collector = DatabaseCollector()
    refresher = Refresher(config, collector)
    refresher.start()  # before the schema exists: it tries again until it is there
    try:
        database.upgrade(config.resolved_database_url)
        wait_until(lambda: collector.gauges is not None, timeout=30)
        first = collector.refreshed_at
        wait_until(lambda: collector.refreshed_at > first, timeout=30)
    finally:
        refresher.stop()
    assert collector.gauges == DatabaseGauges()
