"""Image scanning: scan on push and on demand, findings, the scanning configuration, the SBOM.

A scan is a row per image manifest and a `scan` job. The job reads the image's layers off the
event loop (a worker thread streams each layer once), stores the inventory, matches it against
the vulnerability database and records the findings; then it attaches the inventory as a
CycloneDX SBOM referrer. An index is scanned per platform: its children are scanned, and the
index answers with their statuses and findings together (each finding names its platform).
A push returns as soon as its scan is queued, in the push's own transaction.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import anyio
import anyio.from_thread
import anyio.to_thread

from cargohold.domain.digest import Digest
from cargohold.domain.errors import (
    InvalidParameter,
    LimitExceeded,
    RegistryError,
    ScanNotFound,
    UnsupportedImageType,
)
from cargohold.domain.inventory import Inventory
from cargohold.domain.manifest import (
    OCI_EMPTY,
    OCI_MANIFEST,
    ParsedManifest,
    parse_manifest,
)
from cargohold.domain.records import Manifest, Repository
from cargohold.domain.scans import (
    COMPLETE,
    CONTINUOUS_SCAN,
    FAILED,
    IN_PROGRESS,
    SCAN_ON_PUSH,
    SCAN_QUOTA_SECONDS,
    UNSUPPORTED_IMAGE,
    Scan,
    ScanningConfiguration,
    ScanRule,
    StoredFinding,
)
from cargohold.domain.vulnerabilities import (
    SEVERITIES,
    Finding,
    match,
    os_ecosystem,
    query_key,
    severity_counts,
)
from cargohold.ports import Changes, Metadata, StorageDriver, Transaction
from cargohold.scanning import LayerError, LayerReader, default_analyzers
from cargohold.scanning.sbom import MEDIA_TYPE as SBOM_MEDIA_TYPE
from cargohold.scanning.sbom import cyclonedx_bytes
from cargohold.service.images import ImageId, ImageService, decode_token, encode_token
from cargohold.service.paths import blob_key
from cargohold.service.registry import RegistryService
from cargohold.service.uploads import UploadService
from cargohold.service.vulndb import VulnerabilityDatabase

log = logging.getLogger(__name__)

SCAN = "scan"
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
DEFAULT_FINDINGS_PAGE = 100

DESCRIPTION_IN_PROGRESS = "The scan is in progress."
DESCRIPTION_COMPLETE = "The scan was completed successfully."
DESCRIPTION_UNSUPPORTED = "The operating system and/or package manager are not supported."
DESCRIPTION_ARTIFACT = "The image is an artifact, not a container image: there is nothing to scan."


@dataclass(frozen=True, slots=True)
class ScanState:
    """What DescribeImages and DescribeImageScanFindings say about an image's scan."""

    status: str
    description: str
    completed_at: float | None = None
    vulndb_updated_at: float | None = None
    severity_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FindingsPage:
    manifest: Manifest
    state: ScanState
    findings: list[StoredFinding]
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class RepositoryScanning:
    """BatchGetRepositoryScanningConfiguration's answer for one repository."""

    repository: Repository
    scan_on_push: bool
    frequency: str
    rule: ScanRule | None


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


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class ScanService:
    def __init__(
        self,
        store: Metadata,
        storage: StorageDriver,
        registry: RegistryService,
        uploads: UploadService,
        vulndb: VulnerabilityDatabase,
        clock: Callable[[], float],
        *,
        wake: Callable[[], None] | None = None,
        attach_sbom: bool = True,
    ) -> None:
        self._store = store
        self._storage = storage
        self._registry = registry
        self._uploads = uploads
        self._vulndb = vulndb
        self._clock = clock
        self._wake = wake
        self._attach_sbom = attach_sbom
        self._images = ImageService(registry, store)
        # Reading layers and matching are CPU-bound: one at a time leaves a core for requests.
        self._threads = anyio.CapacityLimiter(1)

    # == configuration ===========================================================================

    async def registry_configuration(self, registry_id: str) -> ScanningConfiguration:
        async with self._store.read() as tx:
            return await tx.scans.scanning_configuration(registry_id)

    async def put_registry_configuration(
        self, registry_id: str, scan_type: str | None, rules: Sequence[Any] | None
    ) -> ScanningConfiguration:
        configuration = ScanningConfiguration.checked(scan_type, rules)
        async with self._store.write() as tx:
            await tx.scans.put_scanning_configuration(registry_id, configuration, self._clock())
        return configuration

    async def put_repository_scanning(self, repository: Repository, scan_on_push: bool) -> None:
        async with self._store.write() as tx:
            await tx.repositories.update_repository(repository.id, scan_on_push=scan_on_push)

    async def repository_scanning(
        self, registry_id: str, names: Sequence[str]
    ) -> tuple[list[RepositoryScanning], list[str]]:
        """Each named repository's effective configuration; names that do not exist."""
        found, missing = [], []
        async with self._store.read() as tx:
            configuration = await tx.scans.scanning_configuration(registry_id)
            for name in dict.fromkeys(names):
                repository = await tx.repositories.get_repository(registry_id, name)
                if repository is None:
                    missing.append(name)
                    continue
                rule = configuration.rule_for(name)
                found.append(
                    RepositoryScanning(
                        repository,
                        configuration.frequency(name, repository.scan_on_push)
                        in (SCAN_ON_PUSH, CONTINUOUS_SCAN),
                        configuration.frequency(name, repository.scan_on_push),
                        rule,
                    )
                )
        return found, missing

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
        configuration = await tx.scans.scanning_configuration(repository.registry_id)
        frequency = configuration.frequency(repository.name, repository.scan_on_push)
        if frequency not in (SCAN_ON_PUSH, CONTINUOUS_SCAN):
            return False
        await tx.scans.start_scan(manifest_id, now, DESCRIPTION_IN_PROGRESS)
        await tx.jobs.enqueue(SCAN, {"manifest_id": manifest_id}, now)
        return True

    def pushed(self) -> None:
        """After the push's transaction committed: let the runner start at once."""
        if self._wake is not None:
            self._wake()

    # == StartImageScan ===========================================================================

    async def _manifest(self, repository: Repository, image_id: ImageId) -> Manifest:
        page = await self._images.describe_images(repository, [image_id])
        return page.items[0].manifest

    async def start_image_scan(
        self, repository: Repository, image_id: ImageId
    ) -> tuple[Manifest, ScanState]:
        manifest = await self._manifest(repository, image_id)
        parsed = parse_manifest(manifest.content, manifest.media_type)
        now = self._clock()
        targets = [manifest]
        if parsed.is_index:
            targets = await self._image_children(repository, parsed)
            if not targets:
                raise UnsupportedImageType(
                    "The index lists no container image of this repository to scan."
                )
        queued = 0
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
                    queued += 1
                    continue
                await tx.scans.start_scan(target.id, now, DESCRIPTION_IN_PROGRESS)
                await tx.jobs.enqueue(SCAN, {"manifest_id": target.id}, now)
                queued += 1
        if not queued:
            raise LimitExceeded("The scan quota per image has been exceeded. Wait and try again.")
        self.pushed()
        return manifest, (await self.states(repository, [manifest]))[manifest.id]

    # == reading scans =============================================================================

    async def _image_children(
        self, repository: Repository, parsed: ParsedManifest
    ) -> list[Manifest]:
        wanted = [str(c.digest) for c in parsed.children]
        async with self._store.read() as tx:
            found = await tx.manifests.manifests_by_digest(repository.id, wanted)
        by_digest = {m.digest: m for m in found}
        return [by_digest[d] for d in dict.fromkeys(wanted) if d in by_digest]

    @staticmethod
    def _state(scan: Scan) -> ScanState:
        return ScanState(
            scan.status,
            scan.description,
            scan.completed_at,
            scan.vulndb_updated_at,
            dict(scan.severity_counts),
        )

    @staticmethod
    def _combined(states: list[ScanState]) -> ScanState:
        """An index's state from its children's: any in progress, then any failed, then
        complete (unsupported only when every child is)."""
        statuses = {s.status for s in states}
        counts: dict[str, int] = {}
        for state in states:
            for level, count in state.severity_counts.items():
                counts[level] = counts.get(level, 0) + count
        completed = [s.completed_at for s in states if s.completed_at is not None]
        updated = [s.vulndb_updated_at for s in states if s.vulndb_updated_at is not None]
        if IN_PROGRESS in statuses:
            return ScanState(IN_PROGRESS, DESCRIPTION_IN_PROGRESS)
        if FAILED in statuses:
            reasons = "; ".join(s.description for s in states if s.status == FAILED)
            return ScanState(FAILED, reasons, max(completed, default=None))
        if statuses == {UNSUPPORTED_IMAGE}:
            return ScanState(UNSUPPORTED_IMAGE, states[0].description, max(completed, default=None))
        return ScanState(
            COMPLETE,
            DESCRIPTION_COMPLETE,
            max(completed, default=None),
            max(updated, default=None),
            counts,
        )

    async def states(
        self, repository: Repository, listed: Sequence[Manifest]
    ) -> dict[int, ScanState]:
        """The scan state of each listed manifest that has one (an index: of its children)."""
        parsed = {m.id: parse_manifest(m.content, m.media_type) for m in listed}
        children: dict[int, list[Manifest]] = {}
        for manifest in listed:
            if parsed[manifest.id].is_index:
                children[manifest.id] = await self._image_children(repository, parsed[manifest.id])
        ids = {m.id for m in listed} | {c.id for kids in children.values() for c in kids}
        async with self._store.read() as tx:
            scans = await tx.scans.scans_of(ids)
        states: dict[int, ScanState] = {}
        for manifest in listed:
            if manifest.id in children:
                kids = [self._state(scans[c.id]) for c in children[manifest.id] if c.id in scans]
                if kids:
                    states[manifest.id] = self._combined(kids)
            elif manifest.id in scans:
                states[manifest.id] = self._state(scans[manifest.id])
        return states

    async def describe_findings(
        self,
        repository: Repository,
        image_id: ImageId,
        *,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> FindingsPage:
        manifest = await self._manifest(repository, image_id)
        states = await self.states(repository, [manifest])
        state = states.get(manifest.id)
        if state is None:
            raise ScanNotFound(
                f"Image scan does not exist for the image with '{image_id.describe()}' in the "
                f"repository with name '{repository.name}' in the registry with id "
                f"'{repository.registry_id}'"
            )
        limit = DEFAULT_FINDINGS_PAGE if max_results is None else max_results
        if not 1 <= limit <= 1000:
            raise InvalidParameter(
                "Invalid parameter at 'maxResults' failed to satisfy constraint: "
                "'Member must have value between 1 and 1000'"
            )
        after = -1
        if next_token is not None:
            key = decode_token(next_token, "DescribeImageScanFindings", repository.id)
            if len(key) != 2 or key[0] != manifest.id or not isinstance(key[1], int):
                raise InvalidParameter(
                    "Invalid parameter at 'nextToken' failed to satisfy constraint: "
                    "'Invalid NextToken'"
                )
            after = key[1]
        if state.status != COMPLETE:
            return FindingsPage(manifest, state, [])
        found = await self._findings(repository, manifest, after, limit + 1)
        token = None
        if len(found) > limit:
            found = found[:limit]
            token = encode_token(
                "DescribeImageScanFindings", repository.id, [manifest.id, found[-1].ordinal]
            )
        return FindingsPage(manifest, state, found, token)

    async def _findings(
        self, repository: Repository, manifest: Manifest, after: int, limit: int
    ) -> list[StoredFinding]:
        parsed = parse_manifest(manifest.content, manifest.media_type)
        if not parsed.is_index:
            async with self._store.read() as tx:
                scan = await tx.scans.scan_of(manifest.id)
                if scan is None:
                    return []
                return await tx.scans.findings_page(scan.id, after=after, limit=limit)
        # An index: its children's findings, each marked with the child's platform, ordered
        # by severity, and numbered for paging.
        platforms = {str(c.digest): c.platform or {} for c in parsed.children}
        merged: list[tuple[int, str, StoredFinding]] = []
        for child in await self._image_children(repository, parsed):
            platform = platforms.get(child.digest, {})
            label = "/".join(
                str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k)
            )
            async with self._store.read() as tx:
                scan = await tx.scans.scan_of(child.id)
                if scan is None:
                    continue
                rows = await tx.scans.findings_page(scan.id, after=-1, limit=1_000_000)
            for row in rows:
                attributes = [*row.attributes, {"key": "platform", "value": label or child.digest}]
                merged.append(
                    (
                        SEVERITIES.index(row.severity) if row.severity in SEVERITIES else 99,
                        f"{row.name}\0{label}",
                        StoredFinding(
                            0, row.name, row.severity, row.uri, row.description, attributes
                        ),
                    )
                )
        merged.sort(key=lambda item: (item[0], item[1]))
        numbered = [
            StoredFinding(i, f.name, f.severity, f.uri, f.description, f.attributes)
            for i, (_, _, f) in enumerate(merged)
        ]
        return [f for f in numbered if f.ordinal > after][:limit]

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
        manifest_id = int(payload["manifest_id"])
        async with self._store.read() as tx:
            listed = await tx.manifests.manifests_by_id([manifest_id])
            scan = await tx.scans.scan_of(manifest_id)
        if not listed or scan is None:
            return  # deleted meanwhile
        manifest = listed[0]
        parsed = parse_manifest(manifest.content, manifest.media_type)
        now = self._clock
        if not is_image(parsed):
            await self._finish(scan.id, UNSUPPORTED_IMAGE, DESCRIPTION_ARTIFACT)
            return
        try:
            inventory = await self.inventory_of(parsed)
        except LayerError as exc:
            await self._finish(scan.id, FAILED, f"A layer of the image cannot be read: {exc}")
            return
        if not inventory.packages and os_ecosystem(inventory.os) is None:
            await self._finish(
                scan.id, UNSUPPORTED_IMAGE, DESCRIPTION_UNSUPPORTED, inventory=inventory
            )
            return
        found, keys = await self._match(inventory)
        updated_at = await self._vulndb.updated_at()
        async with self._store.write(changes=Changes.NOTHING) as tx:
            await tx.scans.finish_scan(
                scan.id,
                status=COMPLETE,
                description=DESCRIPTION_COMPLETE,
                now=now(),
                vulndb_updated_at=updated_at,
                inventory=inventory.to_json(),
                package_keys=keys,
                found=[_finding_row(f) for f in found],
                severity_counts=severity_counts(found),
            )
        if self._attach_sbom:
            try:
                await self._attach(manifest, inventory, scan.id)
            except RegistryError as exc:
                log.warning("could not attach the SBOM of %s: %s", manifest.digest, exc.message)

    async def _finish(
        self, scan_id: int, status: str, description: str, inventory: Inventory | None = None
    ) -> None:
        async with self._store.write(changes=Changes.NOTHING) as tx:
            await tx.scans.finish_scan(
                scan_id,
                status=status,
                description=description,
                now=self._clock(),
                inventory=inventory.to_json() if inventory is not None else None,
            )

    async def fail_scan(self, payload: dict[str, Any], error: str) -> None:
        """The scan job gave up: the scan ends FAILED with the reason."""
        async with self._store.write(changes=Changes.NOTHING) as tx:
            scan = await tx.scans.scan_of(int(payload["manifest_id"]))
            if scan is not None and scan.status == IN_PROGRESS:
                await tx.scans.finish_scan(
                    scan.id,
                    status=FAILED,
                    description=f"The scan failed: {error}"[:1000],
                    now=self._clock(),
                )

    # == CONTINUOUS_SCAN ==========================================================================

    async def rematch(self, payload: dict[str, Any]) -> None:
        """Match again, from their stored inventories, the images under CONTINUOUS_SCAN that
        hold a package whose advisories changed at or after `since`."""
        since = float(payload["since"])
        async with self._store.read() as tx:
            affected = await tx.scans.scans_affected_since(since)
            targets = await tx.scans.scan_targets(affected)
            names = {
                r.id: (r.registry_id, r.name, r.scan_on_push)
                for r in (await tx.repositories.repositories_by_id(t[2] for t in targets)).values()
            }
            configurations = {
                registry: await tx.scans.scanning_configuration(registry)
                for registry in {n[0] for n in names.values()}
            }
        for scan_id, _manifest_id, repository_id in targets:
            registry_id, name, scan_on_push = names[repository_id]
            if configurations[registry_id].frequency(name, scan_on_push) != CONTINUOUS_SCAN:
                continue
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

    # == SBOM =====================================================================================

    async def _repository_of(self, manifest: Manifest) -> Repository:
        async with self._store.read() as tx:
            found = await tx.repositories.repositories_by_id([manifest.repository_id])
        row = found[manifest.repository_id]
        return await self._registry.repository(row.name, row.registry_id)

    async def _put_blob(self, repository: Repository, data: bytes) -> Digest:
        digest = Digest.of(data)
        async with self._store.read() as tx:
            present = await tx.blobs.linked_blob_size(repository.id, str(digest))
        if present is None:
            await self._uploads.monolithic(repository, str(digest), _one(data), len(data))
        return digest

    async def _attach(self, manifest: Manifest, inventory: Inventory, scan_id: int) -> str:
        repository = await self._repository_of(manifest)
        document = cyclonedx_bytes(
            inventory, image_name=repository.name, image_digest=manifest.digest
        )
        config = await self._put_blob(repository, b"{}")
        layer = await self._put_blob(repository, document)
        raw = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": SBOM_MEDIA_TYPE,
                "config": {"mediaType": OCI_EMPTY, "digest": str(config), "size": 2},
                "layers": [
                    {"mediaType": SBOM_MEDIA_TYPE, "digest": str(layer), "size": len(document)}
                ],
                "subject": {
                    "mediaType": manifest.media_type,
                    "digest": manifest.digest,
                    "size": manifest.size,
                },
                "annotations": {"org.opencontainers.image.description": "CycloneDX SBOM"},
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        digest = Digest.of(raw)
        await self._registry.put_manifest(repository, str(digest), raw, OCI_MANIFEST)
        async with self._store.write(changes=Changes.NOTHING) as tx:
            await tx.scans.set_sbom(scan_id, str(digest))
        return str(digest)

    async def sbom(self, repository: Repository, image_id: ImageId) -> bytes:
        """The image's SBOM from its last scan's inventory (ScanNotFound without one)."""
        manifest = await self._manifest(repository, image_id)
        async with self._store.read() as tx:
            scan = await tx.scans.scan_of(manifest.id)
        if scan is None or scan.inventory is None:
            raise ScanNotFound(
                f"The image {manifest.digest} in repository '{repository.name}' has no "
                "completed scan to export"
            )
        return cyclonedx_bytes(
            Inventory.from_json(scan.inventory),
            image_name=repository.name,
            image_digest=manifest.digest,
        )


__all__ = ["SCAN", "FindingsPage", "RepositoryScanning", "ScanService", "ScanState", "is_image"]
