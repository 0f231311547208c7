"""Running scans: queueing them (on push, and on StartImageScan) and the job handlers that carry
them out.

A scan is a row per image manifest and a `scan` job. The job reads the image's layers off the
event loop (a worker thread streams each layer once), stores the inventory, matches it against
the vulnerability database and records the findings; then it attaches the inventory as a
CycloneDX SBOM referrer. An index is scanned per platform: its children are scanned. A push
returns as soon as its scan is queued, in the push's own transaction. After a vulnerability
database import, the `rematch` job matches the stored inventories of CONTINUOUS_SCAN images
again.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import IO, Any

import anyio
import anyio.from_thread
import anyio.to_thread

from cargohold.domain.ecrevents import EcrEvent
from cargohold.domain.errors import LimitExceeded, RegistryError, UnsupportedImageType
from cargohold.domain.inventory import Inventory
from cargohold.domain.manifest import ParsedManifest, parse_manifest
from cargohold.domain.records import Manifest, Repository
from cargohold.domain.scans import (
    COMPLETE,
    FAILED,
    IN_PROGRESS,
    SCAN_QUOTA_SECONDS,
    UNSUPPORTED_IMAGE,
)
from cargohold.domain.vulnerabilities import (
    Finding,
    match,
    os_ecosystem,
    query_key,
    severity_counts,
)
from cargohold.ports import UNOBSERVED, Changes, Metadata, Observer, StorageDriver, Transaction
from cargohold.scanning import LayerError, LayerReader, default_analyzers
from cargohold.service.events import record_scan, scan_event
from cargohold.service.findings import (
    DESCRIPTION_COMPLETE,
    DESCRIPTION_IN_PROGRESS,
    FindingsService,
    ScanState,
)
from cargohold.service.images import ImageId
from cargohold.service.paths import blob_key
from cargohold.service.sbom import SbomService
from cargohold.service.scan_config import continuous_scans, scans_on_push
from cargohold.service.vulndb import VulnerabilityDatabase

log = logging.getLogger(__name__)

SCAN = "scan"
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)

DESCRIPTION_UNSUPPORTED = "The operating system and/or package manager are not supported."
DESCRIPTION_ARTIFACT = "The image is an artifact, not a container image: there is nothing to scan."


def is_image(parsed: ParsedManifest) -> bool:
    """A container image (not an index, not an artifact)."""
    return (
        parsed.config is not None
        and parsed.config.media_type in IMAGE_CONFIGS
        and not parsed.artifact_type
    )


def _finding_row(finding: Finding, platform: str | None = None) -> dict[str, Any]:
    attributes = [{"key": k, "value": v} for k, v in finding.attributes]
    if platform:
        attributes.append({"key": "platform", "value": platform})
    return {
        "name": finding.name,
        "severity": finding.severity,
        "uri": finding.uri,
        "description": finding.description,
        "attributes": attributes,
    }


class _BlobStream(io.RawIOBase):
    """A storage driver's async byte stream, read from a worker thread."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        return await self._chunks.__anext__()

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._done:
            try:
                self._pending = anyio.from_thread.run(self._next)
            except StopAsyncIteration:
                self._done = True
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class ScanRunner:
    """Queues scans and runs the `scan` and `rematch` jobs; the registry's push hook.

    Without `sbom` a scan attaches no SBOM referrer."""

    def __init__(
        self,
        store: Metadata,
        storage: StorageDriver,
        vulndb: VulnerabilityDatabase,
        findings: FindingsService,
        clock: Callable[[], float],
        *,
        sbom: SbomService | None = None,
        wake: Callable[[], None] | None = None,
        region: str = "us-east-1",
        observer: Observer = UNOBSERVED,
    ) -> None:
        self._store = store
        #: The region the "ECR Image Scan" events name.
        self._region = region
        self._observer = observer
        self._storage = storage
        self._vulndb = vulndb
        self._findings = findings
        self._clock = clock
        self._sbom = sbom
        self._wake = wake
        # Reading layers and matching are CPU-bound: one at a time leaves a core for requests.
        self._threads = anyio.CapacityLimiter(1)

    # == scan on push =============================================================================

    async def manifest_pushed(
        self,
        tx: Transaction,
        repository: Repository,
        manifest_id: int,
        parsed: ParsedManifest,
        now: float,
    ) -> bool:
        """In the push's transaction: queue a scan when the repository scans on push; whether
        one was queued. Indexes are answered from their children, each scanned on its push."""
        if not is_image(parsed):
            return False
        if not await scans_on_push(tx, repository):
            return False
        await tx.scans.start_scan(manifest_id, now, DESCRIPTION_IN_PROGRESS)
        await tx.jobs.enqueue(SCAN, {"manifest_id": manifest_id}, now)
        return True

    def pushed(self) -> None:
        """After the push's transaction committed: let the runner start at once."""
        if self._wake is not None:
            self._wake()

    # == StartImageScan ===========================================================================

    async def start_image_scan(
        self, repository: Repository, image_id: ImageId
    ) -> tuple[Manifest, ScanState]:
        manifest = await self._findings.manifest(repository, image_id)
        parsed = parse_manifest(manifest.content, manifest.media_type)
        now = self._clock()
        targets = [manifest]
        if parsed.is_index:
            targets = await self._findings.image_children(repository, parsed)
            if not targets:
                raise UnsupportedImageType(
                    "The index lists no container image of this repository to scan."
                )
        if not await self._queue(targets, now):
            raise LimitExceeded("The scan quota per image has been exceeded. Wait and try again.")
        self.pushed()
        return manifest, (await self._findings.states(repository, [manifest]))[manifest.id]

    async def _queue(self, targets: Sequence[Manifest], now: float) -> int:
        """Start a scan of each target not scanned within the quota (an artifact's ends at
        once, unsupported); how many were started."""
        queued = 0
        ended: list[EcrEvent] = []
        async with self._store.write(changes=Changes.NOTHING) as tx:
            for target in targets:
                current = await tx.scans.scan_of(target.id)
                if current is not None and now - current.requested_at < SCAN_QUOTA_SECONDS:
                    continue
                target_parsed = parse_manifest(target.content, target.media_type)
                if not is_image(target_parsed):
                    scan_id = await tx.scans.start_scan(target.id, now, DESCRIPTION_IN_PROGRESS)
                    await tx.scans.finish_scan(
                        scan_id, status=UNSUPPORTED_IMAGE, description=DESCRIPTION_ARTIFACT, now=now
                    )
                    event = await scan_event(
                        tx, self._region, target.id, UNSUPPORTED_IMAGE, {}, now
                    )
                    ended.extend([event] if event is not None else [])
                    queued += 1
                    continue
                await tx.scans.start_scan(target.id, now, DESCRIPTION_IN_PROGRESS)
                await tx.jobs.enqueue(SCAN, {"manifest_id": target.id}, now)
                queued += 1
            # Last: appending holds the outbox's lock until the commit.
            await tx.outbox.append_events(ended)
        return queued

    # == the scan job =============================================================================

    def _read_inventory(self, keys: Sequence[str]) -> Inventory:
        """In a worker thread: stream each layer once, in order."""
        reader = LayerReader(default_analyzers())
        for key in keys:
            path = self._storage.local_path(key)
            with contextlib.ExitStack() as stack:
                stream: IO[bytes]
                if path is not None:
                    stream = stack.enter_context(open(path, "rb"))
                else:
                    stream = io.BufferedReader(_BlobStream(self._storage.read(key)), 1 << 20)
                reader.add_layer(stream)
        return reader.inventory()

    async def inventory_of(self, parsed: ParsedManifest) -> Inventory:
        keys = [blob_key(layer.digest) for layer in parsed.layers if not layer.is_foreign]
        return await anyio.to_thread.run_sync(self._read_inventory, keys, limiter=self._threads)

    async def _match(self, inventory: Inventory) -> tuple[list[Finding], list[tuple[str, str]]]:
        keys = []
        for package in inventory.packages:
            key = query_key(package, inventory.os)
            if key is not None:
                keys.append((key.ecosystem, key.name))
        records = await self._vulndb.lookup(keys)

        def run() -> list[Finding]:
            return match(inventory, lambda k: records.get((k.ecosystem, k.name), []))

        found = await anyio.to_thread.run_sync(run, limiter=self._threads)
        return found, sorted(set(keys))

    async def run_scan(self, payload: dict[str, Any]) -> None:
        started = time.perf_counter()
        ended = await self._scan(int(payload["manifest_id"]))
        if ended is not None:
            status, severities = ended
            self._observer.scan_finished(status, time.perf_counter() - started, severities)

    async def _scan(self, manifest_id: int) -> tuple[str, dict[str, int]] | None:
        """Scan the image; the status it ended with and its findings by severity (None: the
        image or its scan is gone)."""
        async with self._store.read() as tx:
            listed = await tx.manifests.manifests_by_id([manifest_id])
            scan = await tx.scans.scan_of(manifest_id)
        if not listed or scan is None:
            return None  # deleted meanwhile
        manifest = listed[0]
        parsed = parse_manifest(manifest.content, manifest.media_type)
        now = self._clock
        if not is_image(parsed):
            await self._finish(scan.id, manifest_id, UNSUPPORTED_IMAGE, DESCRIPTION_ARTIFACT)
            return UNSUPPORTED_IMAGE, {}
        try:
            inventory = await self.inventory_of(parsed)
        except LayerError as exc:
            reason = f"A layer of the image cannot be read: {exc}"
            await self._finish(scan.id, manifest_id, FAILED, reason)
            return FAILED, {}
        if not inventory.packages and os_ecosystem(inventory.os) is None:
            await self._finish(
                scan.id, manifest_id, UNSUPPORTED_IMAGE, DESCRIPTION_UNSUPPORTED, inventory
            )
            return UNSUPPORTED_IMAGE, {}
        found, keys = await self._match(inventory)
        updated_at = await self._vulndb.updated_at()
        counts = severity_counts(found)
        async with self._store.write(changes=Changes.NOTHING) as tx:
            finished = now()
            await tx.scans.finish_scan(
                scan.id,
                status=COMPLETE,
                description=DESCRIPTION_COMPLETE,
                now=finished,
                vulndb_updated_at=updated_at,
                inventory=inventory.to_json(),
                package_keys=keys,
                found=[_finding_row(f) for f in found],
                severity_counts=counts,
            )
            await record_scan(tx, self._region, manifest_id, COMPLETE, counts, finished)
        if self._sbom is not None:
            try:
                await self._sbom.attach(manifest, inventory, scan.id)
            except RegistryError as exc:
                log.warning("could not attach the SBOM of %s: %s", manifest.digest, exc.message)
        return COMPLETE, counts

    async def _finish(
        self,
        scan_id: int,
        manifest_id: int,
        status: str,
        description: str,
        inventory: Inventory | None = None,
    ) -> None:
        async with self._store.write(changes=Changes.NOTHING) as tx:
            now = self._clock()
            await tx.scans.finish_scan(
                scan_id,
                status=status,
                description=description,
                now=now,
                inventory=inventory.to_json() if inventory is not None else None,
            )
            await record_scan(tx, self._region, manifest_id, status, {}, now)

    async def fail_scan(self, payload: dict[str, Any], error: str) -> None:
        """The scan job gave up: the scan ends FAILED with the reason."""
        manifest_id = int(payload["manifest_id"])
        async with self._store.write(changes=Changes.NOTHING) as tx:
            scan = await tx.scans.scan_of(manifest_id)
            if scan is not None and scan.status == IN_PROGRESS:
                now = self._clock()
                await tx.scans.finish_scan(
                    scan.id,
                    status=FAILED,
                    description=f"The scan failed: {error}"[:1000],
                    now=now,
                )
                await record_scan(tx, self._region, manifest_id, FAILED, {}, now)
                self._observer.scan_finished(FAILED, None, {})

    # == CONTINUOUS_SCAN ==========================================================================

    async def rematch(self, payload: dict[str, Any]) -> None:
        """Match again, from their stored inventories, the images under CONTINUOUS_SCAN that
        hold a package whose advisories changed at or after `since`."""
        since = float(payload["since"])
        async with self._store.read() as tx:
            scan_ids = await continuous_scans(tx, since)
        for scan_id in scan_ids:
            await self._rematch_one(scan_id)

    async def _rematch_one(self, scan_id: int) -> None:
        async with self._store.read() as tx:
            scan = await tx.scans.scan_by_id(scan_id)
        if scan is None or scan.status != COMPLETE or scan.inventory is None:
            return
        inventory = Inventory.from_json(scan.inventory)
        found, _ = await self._match(inventory)
        updated_at = await self._vulndb.updated_at()
        async with self._store.write(changes=Changes.NOTHING) as tx:
            await tx.scans.finish_scan(
                scan.id,
                status=COMPLETE,
                description=DESCRIPTION_COMPLETE,
                now=self._clock(),
                vulndb_updated_at=updated_at,
                found=[_finding_row(f) for f in found],
                severity_counts=severity_counts(found),
                keep_inventory=True,
            )


__all__ = ["SCAN", "ScanRunner", "is_image"]
