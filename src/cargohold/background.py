"""The background work of a node, built from its configuration: lifecycle policies and the
archive storage class (`build_lifecycle`), online garbage collection (`build_collector`),
scrubbing (`build_scrubber`) and the expiry of idle uploads (`build_expiry`).
Part of the composition root (`app.py` builds through these, and so do the CLIs); they wire
services and job kinds, never adapters."""

from __future__ import annotations

from collections.abc import Callable

from cargohold.config import Config
from cargohold.ports import Metadata, StorageDriver
from cargohold.service.archive import ArchiveService
from cargohold.service.gc import GarbageCollector
from cargohold.service.jobs import JobKind, JobRunner
from cargohold.service.lifecycle import LifecycleService
from cargohold.service.scrub import SCRUB, Scrubber
from cargohold.service.upload_expiry import EXPIRE_UPLOADS, UploadExpiry


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


def build_expiry(
    config: Config,
    store: Metadata,
    storage: StorageDriver,
    clock: Callable[[], float],
    jobs: JobRunner,
) -> UploadExpiry:
    """The removal of idle upload sessions, a periodic job of `jobs`."""
    expiry = UploadExpiry(store, storage, clock, expiry=config.upload_expiry_seconds)
    jobs.register(EXPIRE_UPLOADS, JobKind(expiry.run, every=expiry.interval))
    return expiry
