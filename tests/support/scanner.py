"""The scanning parts wired as the composition root wires them, on the service tests' fixtures,
with a job runner the test turns by hand; and pushing the test images."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from cargohold.app import build_scanning
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.ports import UNOBSERVED, Observer
from cargohold.scanning.osv import OsvSource
from cargohold.service.content import ContentService
from cargohold.service.findings import FindingsService
from cargohold.service.images import ImageId
from cargohold.service.jobs import JobRunner
from cargohold.service.sbom import SbomService
from cargohold.service.scan_config import ScanConfigService
from cargohold.service.scan_runner import ScanRunner
from cargohold.service.uploads import UploadService
from cargohold.service.vulndb import VulnerabilityDatabase
from cargohold.storage.filesystem import FilesystemDriver
from support.images import (
    OCI_CONFIG,
    OCI_MANIFEST,
    Descriptor,
    image_config,
    image_manifest,
    sha256_digest,
)
from support.scan_images import OSV_FIXTURES, ScanImage


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push_blob(uploads: UploadService, repo: Repository, data: bytes) -> str:
    digest = sha256_digest(data)
    await uploads.monolithic(repo, digest, _body(data), len(data))
    return digest


async def push_image(
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    image: ScanImage,
    *,
    tag: str | None = None,
    architecture: str = "amd64",
) -> tuple[str, bytes]:
    layers = image.layer_descriptors()
    for blob, _ in image.layers:
        await push_blob(uploads, repo, blob)
    config = image_config(layers, architecture=architecture)
    await push_blob(uploads, repo, config)
    manifest = image_manifest(Descriptor.of(OCI_CONFIG, config), [la.descriptor for la in layers])
    pushed = await content.put_manifest(
        repo, tag or sha256_digest(manifest), manifest, OCI_MANIFEST
    )
    return pushed.manifest.digest, manifest


class Scanner:
    def __init__(
        self,
        store: MetadataStore,
        storage: FilesystemDriver,
        content: ContentService,
        uploads: UploadService,
        now: list[float],
        *,
        observer: Observer = UNOBSERVED,
    ) -> None:
        self.store = store
        self.vulndb = VulnerabilityDatabase(store, lambda: now[0])
        self.jobs = JobRunner(store, lambda: now[0], observer=observer)
        scans = build_scanning(store, storage, content, uploads, lambda: now[0], self.jobs)
        self.configuration: ScanConfigService = scans.configuration
        self.runner: ScanRunner = scans.runner
        self.findings: FindingsService = scans.findings
        self.sbom: SbomService = scans.sbom

    @classmethod
    async def with_fixtures(
        cls,
        store: MetadataStore,
        storage: FilesystemDriver,
        content: ContentService,
        uploads: UploadService,
        now: list[float],
        *,
        observer: Observer = UNOBSERVED,
    ) -> Scanner:
        """A scanner whose vulnerability database holds the OSV fixtures (its jobs and scans
        reported to `observer`)."""
        made = cls(store, storage, content, uploads, now, observer=observer)
        await made.vulndb.import_records(OsvSource(OSV_FIXTURES))
        return made

    async def drain(self) -> int:
        ran = 0
        while await self.jobs.run_one():
            ran += 1
        return ran

    async def scan_on_push(self, repo: Repository) -> Repository:
        await self.configuration.put_repository_scanning(repo, True)
        async with self.store.read() as tx:
            updated = await tx.repositories.get_repository(repo.registry_id, repo.name)
        assert updated is not None
        return updated

    async def all_findings(self, repo: Repository, digest: str) -> list[dict[str, Any]]:
        """Every finding of the image, read two to a page."""
        found: list[dict[str, Any]] = []
        token = None
        while True:
            page = await self.findings.describe_findings(
                repo, ImageId(digest), max_results=2, next_token=token
            )
            for f in page.findings:
                attributes = {a["key"]: a["value"] for a in f.attributes}
                found.append({"name": f.name, "severity": f.severity, **attributes})
            token = page.next_token
            if token is None:
                return found
