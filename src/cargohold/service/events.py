"""The ECR events the services write, each in the write transaction of the change it reports
(`domain.ecrevents` builds them, `ports.outbox.Outbox` stores them).

Events are appended as a transaction's last statement: on PostgreSQL appending takes the
outbox's lock, held until the commit (see `metadata.outbox`). Reads never write events.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import anyio

from cargohold.domain.ecrevents import FAILURE, PUSH, EcrEvent, image_action, image_scan
from cargohold.domain.manifest import ParsedManifest
from cargohold.domain.records import Manifest, Repository
from cargohold.ports import Changes, Metadata, OutboxRecord, Transaction

log = logging.getLogger(__name__)

#: Events read per query when following the outbox.
READ_BATCH = 500
#: The job kind that prunes the outbox, and the longest time between two of its runs.
PRUNE_EVENTS = "prune-events"
LONGEST_PRUNE_INTERVAL = 3600.0


def image_actions(
    action: str,
    repository: Repository,
    region: str,
    images: Iterable[tuple[Manifest, str | None]],
    now: float,
    *,
    result: str = "SUCCESS",
) -> list[EcrEvent]:
    """One "ECR Image Action" per (manifest, tag or None) of `repository`."""
    return [
        image_action(
            action,
            account=repository.registry_id,
            region=region,
            repository=repository.name,
            digest=manifest.digest,
            tag=tag,
            result=result,
            manifest_media_type=manifest.media_type,
            artifact_media_type=manifest.artifact_type,
            now=now,
        )
        for manifest, tag in images
    ]


def refused_push(
    repository: Repository,
    region: str,
    digest: str,
    tag: str | None,
    parsed: ParsedManifest,
    now: float,
) -> EcrEvent:
    """The FAILURE of a push the registry refused (an immutable tag already set)."""
    return image_action(
        PUSH,
        account=repository.registry_id,
        region=region,
        repository=repository.name,
        digest=digest,
        tag=tag,
        result=FAILURE,
        manifest_media_type=parsed.media_type,
        artifact_media_type=parsed.effective_artifact_type,
        now=now,
    )


def removed_images(manifest: Manifest, tags: Iterable[str]) -> list[tuple[Manifest, str | None]]:
    """What deleting `manifest` with its `tags` removes, as ECR reports it: one image per tag,
    or the image alone when it had none."""
    named: list[tuple[Manifest, str | None]] = [(manifest, tag) for tag in tags]
    return named or [(manifest, None)]


async def scan_event(
    tx: Transaction,
    region: str,
    manifest_id: int,
    status: str,
    severity_counts: Mapping[str, int],
    now: float,
) -> EcrEvent | None:
    """ "ECR Image Scan" for the scan of `manifest_id` that ended with `status` (None when the
    image is gone)."""
    listed = await tx.manifests.manifests_by_id([manifest_id])
    if not listed:
        return None
    manifest = listed[0]
    repository = (await tx.repositories.repositories_by_id([manifest.repository_id])).get(
        manifest.repository_id
    )
    if repository is None:
        return None
    tags = (await tx.manifests.tags_by_manifest([manifest.id])).get(manifest.id, [])
    return image_scan(
        account=repository.registry_id,
        region=region,
        repository=repository.name,
        digest=manifest.digest,
        tags=sorted(tags),
        status=status,
        severity_counts=severity_counts,
        now=now,
    )


async def record_scan(
    tx: Transaction,
    region: str,
    manifest_id: int,
    status: str,
    severity_counts: Mapping[str, int],
    now: float,
) -> None:
    """Append the `scan_event`, as the transaction's last statement."""
    event = await scan_event(tx, region, manifest_id, status, severity_counts, now)
    if event is not None:
        await tx.outbox.append_events([event])


async def start_of(store: Metadata, *, from_start: bool, since_id: int | None) -> int:
    """The cursor a reader of the outbox begins after: `since_id`, 0 (everything kept) with
    `from_start`, else the newest event (only what comes next)."""
    if since_id is not None:
        return since_id
    if from_start:
        return 0
    async with store.read() as tx:
        return await tx.outbox.last_event_id()


async def follow_outbox(
    store: Metadata,
    after: int,
    *,
    follow: bool,
    interval: float = 1.0,
    stop: anyio.Event | None = None,
) -> AsyncIterator[OutboxRecord]:
    """The events after id `after`, by ascending id; with `follow`, then every event written
    later, polling every `interval` seconds, until `stop` is set. Ids become visible in
    commit order (see `ports.outbox`), so the cursor never passes an event that commits
    later. `stop` ends the iteration between two reads, never in the middle of one."""
    stop = stop or anyio.Event()
    cursor = after
    while not stop.is_set():
        async with store.read() as tx:
            records = await tx.outbox.events_after(cursor, READ_BATCH)
        for record in records:
            yield record
        if records:
            cursor = records[-1].id
        if len(records) == READ_BATCH:
            continue
        if not follow:
            return
        with anyio.move_on_after(interval):
            await stop.wait()


class EventRetention:
    """Prunes the outbox: an event leaves once it is older than the retention and every
    delivery target's cursor has passed it (with no cursor at all, once it is old enough).
    A target counts from its first cursor row on. Pruning below every cursor cannot reorder
    what a reader sees, so it takes no outbox lock."""

    def __init__(self, store: Metadata, clock: Callable[[], float], *, retention: float) -> None:
        self._store = store
        self._clock = clock
        self.retention = retention

    @property
    def interval(self) -> float:
        """Seconds between two prunings: at most the retention, and at most an hour."""
        return min(self.retention, LONGEST_PRUNE_INTERVAL)

    async def run(self, payload: Mapping[str, Any] | None = None) -> None:
        """The periodic job's handler (it takes no payload)."""
        removed = await self.prune()
        if removed:
            log.info("%d events older than %g s left the outbox", removed, self.retention)

    async def prune(self) -> int:
        """Delete what may go; how many events."""
        cutoff = self._clock() - self.retention
        async with self._store.write(changes=Changes.NOTHING) as tx:
            cursors = await tx.outbox.cursors()
            through = min(cursors.values()) if cursors else await tx.outbox.last_event_id()
            return await tx.outbox.delete_events_before(cutoff, through)
