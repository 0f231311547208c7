"""The background work of a node, built from its configuration: lifecycle policies and the
archive storage class (`build_lifecycle`), online garbage collection (`build_collector`),
scrubbing (`build_scrubber`), expiring upload sessions (`build_upload_expiry`), pruning the
event outbox (`build_event_retention`) and delivering events to webhooks
(`build_event_delivery`); `build_background` builds all of them but the upload expiry.
Part of the composition root (`app.py` builds through these, and so do the CLIs); they wire
services and job kinds, never adapters."""

from __future__ import annotations

from collections.abc import Callable

from cargohold.config import Config
from cargohold.ports import UNOBSERVED, Metadata, StorageDriver
from cargohold.service.archive import ArchiveService
from cargohold.service.event_delivery import EventDelivery, WebhookTarget
from cargohold.service.events import PRUNE_EVENTS, EventRetention
from cargohold.service.gc import GarbageCollector
from cargohold.service.jobs import JobKind, JobRunner
from cargohold.service.lifecycle import LifecycleService
from cargohold.service.scrub import SCRUB, Scrubber
from cargohold.service.upload_expiry import EXPIRE_UPLOADS, UploadExpiry
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
        store,
        targets,
        sender,
        clock,
        retry_max=config.events.retry_max_seconds,
        observer=jobs.observer if jobs is not None else UNOBSERVED,
    )
    if jobs is not None:
        jobs.attach(delivery.start, delivery.stop)
        jobs.attach(_nothing, sender.close)
    return delivery


async def _nothing() -> None:
    return None


def build_event_retention(
    config: Config, store: Metadata, clock: Callable[[], float], jobs: JobRunner | None = None
) -> EventRetention:
    """Outbox pruning; with `jobs`, every `min(events_retention_seconds, 1 h)`."""
    retention = EventRetention(store, clock, retention=config.events_retention_seconds)
    if jobs is not None:
        jobs.register(PRUNE_EVENTS, JobKind(retention.run, every=retention.interval))
    return retention


def build_upload_expiry(
    config: Config,
    store: Metadata,
    storage: StorageDriver,
    clock: Callable[[], float],
    jobs: JobRunner,
) -> UploadExpiry:
    """The sweep of idle upload sessions, every `min(upload_expiry_seconds, 1 h)` on `jobs`."""
    expiry = UploadExpiry(store, storage, clock, expiry=config.upload_expiry_seconds)
    jobs.register(EXPIRE_UPLOADS, JobKind(expiry.run, every=expiry.interval))
    return expiry


def build_background(
    config: Config,
    store: Metadata,
    storage: StorageDriver,
    clock: Callable[[], float],
    jobs: JobRunner,
) -> tuple[LifecycleService, ArchiveService]:
    """Lifecycle, garbage collection, scrubbing, the outbox's pruning and the delivery of
    events, on `jobs`; the lifecycle services."""
    lifecycle, archive = build_lifecycle(config, store, clock, jobs)
    build_collector(config, store, storage, clock, jobs)
    build_scrubber(config, store, storage, jobs)
    build_event_retention(config, store, clock, jobs)
    build_event_delivery(config, store, clock, jobs)
    return lifecycle, archive
