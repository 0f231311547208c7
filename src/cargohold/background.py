"""The background work of a node, built from its configuration: lifecycle policies and the
archive storage class (`build_lifecycle`), online garbage collection (`build_collector`),
scrubbing (`build_scrubber`) and the delivery of events to webhooks (`build_event_delivery`);
`build_background` builds them all for a server.
Part of the composition root (`app.py` builds through these, and so do the CLIs); they wire
services and job kinds, never adapters."""

from __future__ import annotations

from collections.abc import Callable

from cargohold.config import Config
from cargohold.ports import Metadata, StorageDriver
from cargohold.service.archive import ArchiveService
from cargohold.service.event_delivery import EventDelivery, WebhookTarget
from cargohold.service.gc import GarbageCollector
from cargohold.service.jobs import JobKind, JobRunner
from cargohold.service.lifecycle import LifecycleService
from cargohold.service.scrub import SCRUB, Scrubber
from cargohold.webhook_sender import HttpxSender


def build_lifecycle(
    config: Config, store: Metadata, clock: Callable[[], float], jobs: JobRunner | None = None
) -> tuple[LifecycleService, ArchiveService]:
    """Lifecycle policies and the archive storage class; with `jobs`, their work runs there."""
    wake = jobs.wake if jobs is not None else None
    interval = config.lifecycle_interval_seconds
    lifecycle = LifecycleService(store, clock, region=config.region, interval=interval, wake=wake)
    archive = ArchiveService(store, clock, wake=wake)
    if jobs is not None:
        lifecycle.register_jobs(jobs)
        archive.register_jobs(jobs)
    return lifecycle, archive


def build_collector(
    config: Config,
    store: Metadata,
    storage: StorageDriver,
    clock: Callable[[], float],
    jobs: JobRunner | None = None,
) -> GarbageCollector:
    """Online garbage collection; with `jobs`, every `gc_interval_seconds` (unless 0)."""
    interval = config.gc_interval_seconds
    collector = GarbageCollector(
        store, storage, clock, grace=config.resolved_gc_grace, interval=interval
    )
    if jobs is not None and interval > 0:
        collector.register_jobs(jobs)
    return collector


def build_scrubber(
    config: Config, store: Metadata, storage: StorageDriver, jobs: JobRunner | None = None
) -> Scrubber:
    """Scrubbing; with `jobs`, every `scrub_interval_seconds` (unless 0)."""
    scrubber = Scrubber(store, storage, interval=config.scrub_interval_seconds)
    if jobs is not None and scrubber.interval > 0:
        jobs.register(SCRUB, JobKind(scrubber.run, every=scrubber.interval))
    return scrubber


def build_event_delivery(
    config: Config, store: Metadata, clock: Callable[[], float], jobs: JobRunner | None = None
) -> EventDelivery | None:
    """Delivery to the configured webhook targets (None when there are none), their secrets
    read now; with `jobs`, it starts and stops with the job runner."""
    if not config.events.webhooks:
        return None
    secrets = config.webhook_secrets()
    targets = [
        WebhookTarget(hook.name, hook.url, secrets[hook.name], hook.event_pattern(), hook.timeout)
        for hook in config.events.webhooks
    ]
    sender = HttpxSender()
    delivery = EventDelivery(
        store, targets, sender, clock, retry_max=config.events.retry_max_seconds
    )
    if jobs is not None:
        jobs.attach(delivery.start, delivery.stop)
        jobs.attach(_nothing, sender.close)
    return delivery


async def _nothing() -> None:
    return None


def build_background(
    config: Config,
    store: Metadata,
    storage: StorageDriver,
    clock: Callable[[], float],
    jobs: JobRunner,
) -> tuple[LifecycleService, ArchiveService]:
    """Everything a server runs in the background, on `jobs`; the lifecycle services."""
    lifecycle, archive = build_lifecycle(config, store, clock, jobs)
    build_collector(config, store, storage, clock, jobs)
    build_scrubber(config, store, storage, jobs)
    build_event_delivery(config, store, clock, jobs)
    return lifecycle, archive
