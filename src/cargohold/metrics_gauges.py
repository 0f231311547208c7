"""The metrics that are read from the database: open upload sessions, the job queue by kind and
the storage bytes of each repository (`metadata.gauges`).

One process reads them, the one that answers scrapes (`serve` itself, beside its workers), in a
thread of its own every `metrics_refresh_seconds`; a scrape returns the last values read and
never queries the database. They are not written to the multiprocess files: the values are the
database's, the same whichever process reads them, so there is nothing to add up across
workers, and a collector in the scraping process gives the one view directly. (A multiprocess
gauge in `mostrecent` mode would show the same numbers, but a file can never forget a series: a
deleted repository would go on reporting its last size until the server restarts; here it
disappears with the next refresh.)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from cargohold.config import Config
from cargohold.metadata import database
from cargohold.metadata.gauges import DatabaseGauges, read_gauges

log = logging.getLogger(__name__)

#: Until the first read succeeds (the workers may still be creating the schema), try this often.
FIRST_READ_RETRY = 0.5


class DatabaseCollector:
    """A prometheus-client collector of the last `DatabaseGauges` read."""

    def __init__(self) -> None:
        self.gauges: DatabaseGauges | None = None
        #: Every job kind seen in the queue since the start: each keeps a series (0 when idle).
        self.kinds: set[str] = set()
        self.refreshed_at = 0.0

    def update(self, gauges: DatabaseGauges, now: float) -> None:
        self.kinds |= gauges.queued.keys() | gauges.running.keys()
        self.gauges = gauges
        self.refreshed_at = now

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        gauges = self.gauges
        if gauges is None:
            return
        yield GaugeMetricFamily(
            "cargohold_upload_sessions_open",
            "upload sessions begun and not yet committed, cancelled or expired",
            value=gauges.open_uploads,
        )
        queued = GaugeMetricFamily(
            "cargohold_job_queue_depth", "jobs due and waiting for a runner", labels=["kind"]
        )
        running = GaugeMetricFamily("cargohold_jobs_running", "jobs being run", labels=["kind"])
        for kind in sorted(self.kinds):
            queued.add_metric([kind], gauges.queued.get(kind, 0))
            running.add_metric([kind], gauges.running.get(kind, 0))
        yield queued
        yield running
        storage = GaugeMetricFamily(
            "cargohold_repository_storage_bytes",
            "bytes of the blobs each repository holds (a blob shared by two counts in both)",
            labels=["registry", "repository"],
        )
        for (registry, name), size in sorted(gauges.storage_bytes.items()):
            storage.add_metric([registry, name], size)
        yield storage
        behind = GaugeMetricFamily(
            "cargohold_event_target_backlog",
            "events in the outbox after a webhook target's delivery cursor",
            labels=["target"],
        )
        for target, count in sorted(gauges.events_behind.items()):
            behind.add_metric([target], count)
        yield behind
        yield GaugeMetricFamily(
            "cargohold_database_metrics_refreshed_timestamp_seconds",
            "when the metrics above were read from the database (Unix time)",
            value=self.refreshed_at,
        )


class Refresher:
    """Reads the gauges into `collector` every `interval` seconds, in a thread of its own
    (with its own event loop and database connection), until `stop`."""

    def __init__(self, config: Config, collector: DatabaseCollector) -> None:
        self._url = config.resolved_database_url
        self._interval = config.metrics_refresh_seconds
        self._expiry = float(config.upload_expiry_seconds)
        self.collector = collector
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-refresh", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        engine = database.create_engine(self._url)
        try:
            while not self._stopping.is_set():
                try:
                    loop.run_until_complete(self._refresh(engine))
                    wait = self._interval
                except Exception as exc:  # the schema may not be there yet; never fatal
                    log.debug("reading the metrics from the database failed: %s", exc)
                    first = self.collector.gauges is None
                    wait = min(self._interval, FIRST_READ_RETRY) if first else self._interval
                self._stopping.wait(wait)
        finally:
            loop.run_until_complete(engine.dispose())
            loop.close()

    async def _refresh(self, engine: Any) -> None:
        now = time.time()
        async with database.transaction(engine, write=False) as conn:
            gauges = await read_gauges(conn, now=now, upload_expiry=self._expiry)
        self.collector.update(gauges, now)
