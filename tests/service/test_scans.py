"""Scanning through the service layer on SQLite (and PostgreSQL where marked): the exact
findings of every test image against the OSV fixtures, scan on push, the daily quota, failures,
indexes per platform, CONTINUOUS_SCAN re-matching, and the SBOM referrer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cargohold.domain.errors import LimitExceeded, ScanNotFound
from cargohold.domain.records import Repository
from cargohold.domain.scans import COMPLETE, FAILED, IN_PROGRESS, UNSUPPORTED_IMAGE
from cargohold.metadata.store import MetadataStore
from cargohold.scanning.osv import OsvSource
from cargohold.service.images import ImageId
from cargohold.service.jobs import JobKind, JobRunner
from cargohold.service.registry import RegistryService
from cargohold.service.scans import SCAN, ScanService
from cargohold.service.uploads import UploadService
from cargohold.service.vulndb import REMATCH, VulnerabilityDatabase
from cargohold.storage.filesystem import FilesystemDriver
from support.images import (
    OCI_CONFIG,
    OCI_MANIFEST,
    Descriptor,
    image_config,
    image_manifest,
    index_manifest,
)
from support.scan_images import IMAGES, OSV_FIXTURES, ScanImage

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True),
]


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push_blob(uploads: UploadService, repo: Repository, data: bytes) -> str:
    from support.images import sha256_digest

    digest = sha256_digest(data)
    await uploads.monolithic(repo, digest, _body(data), len(data))
    return digest


async def push_image(
    registry: RegistryService,
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
    pushed = await registry.put_manifest(repo, tag or _digest(manifest), manifest, OCI_MANIFEST)
    return pushed.manifest.digest, manifest


def _digest(data: bytes) -> str:
    from support.images import sha256_digest

    return sha256_digest(data)


class Scanner:
    """The scan service wired as the app wires it, with a job runner the test turns by hand."""

    def __init__(
        self,
        store: MetadataStore,
        storage: FilesystemDriver,
        registry: RegistryService,
        uploads: UploadService,
        now: list[float],
    ) -> None:
        self.store = store
        self.vulndb = VulnerabilityDatabase(store, lambda: now[0])
        self.service = ScanService(store, storage, registry, uploads, self.vulndb, lambda: now[0])
        registry.push_hook = self.service
        self.runner = JobRunner(store, lambda: now[0])
        self.runner.register(SCAN, JobKind(self.service.run_scan, self.service.fail_scan))
        self.runner.register(REMATCH, JobKind(self.service.rematch))

    async def drain(self) -> int:
        ran = 0
        while await self.runner.run_one():
            ran += 1
        return ran

    async def import_fixtures(self) -> None:
        await self.vulndb.import_records(OsvSource(OSV_FIXTURES))


@pytest.fixture
async def scanner(
    store: MetadataStore,
    storage: FilesystemDriver,
    registry: RegistryService,
    uploads: UploadService,
    now: list[float],
) -> Scanner:
    made = Scanner(store, storage, registry, uploads, now)
    await made.import_fixtures()
    return made


async def scan_on_push(repo: Repository, scanner: Scanner) -> Repository:
    await scanner.service.put_repository_scanning(repo, True)
    async with scanner.store.read() as tx:
        updated = await tx.repositories.get_repository(repo.registry_id, repo.name)
    assert updated is not None
    return updated


async def all_findings(scanner: Scanner, repo: Repository, digest: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = None
    while True:
        page = await scanner.service.describe_findings(
            repo, ImageId(digest), max_results=2, next_token=token
        )
        for f in page.findings:
            attributes = {a["key"]: a["value"] for a in f.attributes}
            found.append({"name": f.name, "severity": f.severity, **attributes})
        token = page.next_token
        if token is None:
            return found


@pytest.mark.parametrize("name", sorted(IMAGES))
async def test_each_image_yields_exactly_its_expected_findings(
    name: str, scanner: Scanner, registry: RegistryService, uploads: UploadService, repo: Repository
) -> None:
    image = IMAGES[name]()
    repo = await scan_on_push(repo, scanner)
    digest, _ = await push_image(registry, uploads, repo, image, tag="v1")
    assert await scanner.drain() >= 1
    page = await scanner.service.describe_findings(repo, ImageId(digest))
    assert page.state.status == image.expected["status"]
    found = await all_findings(scanner, repo, digest)
    got = {(f["name"], f["package_name"], f["package_version"], f["severity"]) for f in found}
    assert got == image.expected_findings()
    assert len(found) == len(got)
    counts: dict[str, int] = {}
    for _, _, _, severity in got:
        counts[severity] = counts.get(severity, 0) + 1
    assert page.state.severity_counts == counts


async def test_findings_carry_cvss_and_the_advisory(
    scanner: Scanner, registry: RegistryService, uploads: UploadService, repo: Repository
) -> None:
    repo = await scan_on_push(repo, scanner)
    digest, _ = await push_image(registry, uploads, repo, IMAGES["languages"](), tag="v1")
    await scanner.drain()
    found = {f["name"]: f for f in await all_findings(scanner, repo, digest)}
    log4shell = found["CVE-2021-44228"]
    assert log4shell["CVSS3_VECTOR"] == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
    assert log4shell["CVSS3_SCORE"] == "10"
    assert log4shell["advisory_id"] == "GHSA-jfh8-c2jp-5v3q"
    assert log4shell["fixed_version"] == "2.15.0"  # the range 2.14.1 falls in
    page = await scanner.service.describe_findings(repo, ImageId(digest))
    first = page.findings[0]
    assert first.severity == "CRITICAL"
    assert first.uri == "https://nvd.nist.gov/vuln/detail/CVE-2021-44228"
    assert "Log4j" in first.description


async def test_push_without_scan_on_push_queues_nothing(
    scanner: Scanner, registry: RegistryService, uploads: UploadService, repo: Repository
) -> None:
    digest, _ = await push_image(registry, uploads, repo, IMAGES["alpine"](), tag="v1")
    assert await scanner.drain() == 1  # only the import's rematch job
    with pytest.raises(ScanNotFound):
        await scanner.service.describe_findings(repo, ImageId(digest))


async def test_registry_rule_scans_on_push(
    scanner: Scanner, registry: RegistryService, uploads: UploadService, repo: Repository
) -> None:
    await scanner.service.put_registry_configuration(
        repo.registry_id,
        "BASIC",
        [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "team/*"}]}],
    )
    digest, _ = await push_image(registry, uploads, repo, IMAGES["alpine"](), tag="v1")
    state = (await scanner.service.describe_findings(repo, ImageId(digest))).state
    assert state.status == IN_PROGRESS  # the push returned before the scan ran
    await scanner.drain()
    state = (await scanner.service.describe_findings(repo, ImageId(digest))).state
    assert state.status == COMPLETE


async def test_start_image_scan_and_the_daily_quota(
    scanner: Scanner,
    registry: RegistryService,
    uploads: UploadService,
    repo: Repository,
    now: list[float],
) -> None:
    digest, _ = await push_image(registry, uploads, repo, IMAGES["rocky"](), tag="v1")
    _, state = await scanner.service.start_image_scan(repo, ImageId(tag="v1"))
    assert state.status == IN_PROGRESS
    await scanner.drain()
    with pytest.raises(LimitExceeded):
        await scanner.service.start_image_scan(repo, ImageId(digest))
    now[0] += 24 * 3600 + 1
    _, state = await scanner.service.start_image_scan(repo, ImageId(digest))
    assert state.status == IN_PROGRESS


async def test_unsupported_and_artifacts(
    scanner: Scanner, registry: RegistryService, uploads: UploadService, repo: Repository
) -> None:
    repo = await scan_on_push(repo, scanner)
    digest, _ = await push_image(registry, uploads, repo, IMAGES["unsupported"](), tag="v1")
    await scanner.drain()
    page = await scanner.service.describe_findings(repo, ImageId(digest))
    assert page.state.status == UNSUPPORTED_IMAGE
    assert page.findings == []


async def test_a_broken_layer_fails_the_scan_with_a_reason(
    scanner: Scanner, registry: RegistryService, uploads: UploadService, repo: Repository
) -> None:
    import gzip

    from support.images import OCI_LAYER_GZIP

    repo = await scan_on_push(repo, scanner)
    blob = gzip.compress(b"this is not a tar archive" * 50)
    digest_layer = await push_blob(uploads, repo, blob)
    layer = Descriptor(OCI_LAYER_GZIP, digest_layer, len(blob))
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    await push_blob(uploads, repo, config)
    manifest = image_manifest(Descriptor.of(OCI_CONFIG, config), [layer])
    pushed = await registry.put_manifest(repo, "broken", manifest, OCI_MANIFEST)
    await scanner.drain()
    page = await scanner.service.describe_findings(repo, ImageId(pushed.manifest.digest))
    assert page.state.status == FAILED
    assert "tar" in page.state.description


async def test_a_job_that_keeps_failing_ends_failed_not_in_progress(
    scanner: Scanner,
    registry: RegistryService,
    uploads: UploadService,
    repo: Repository,
    storage: FilesystemDriver,
    now: list[float],
) -> None:
    repo = await scan_on_push(repo, scanner)
    image = IMAGES["debian"]()
    digest, _ = await push_image(registry, uploads, repo, image, tag="v1")
    # The layer's bytes vanish from storage: every attempt fails with an I/O error.
    from cargohold.domain.digest import Digest
    from cargohold.service.paths import blob_key

    for layer in image.layer_descriptors():
        await storage.delete(blob_key(Digest.parse(layer.descriptor.digest)))
    for _ in range(5):
        await scanner.drain()
        now[0] += 60
    page = await scanner.service.describe_findings(repo, ImageId(digest))
    assert page.state.status == FAILED
    assert page.state.description.startswith("The scan failed:")


async def test_an_index_is_scanned_per_platform(
    scanner: Scanner, registry: RegistryService, uploads: UploadService, repo: Repository
) -> None:
    image = IMAGES["languages"]()
    amd64, amd64_raw = await push_image(registry, uploads, repo, image)
    arm64, arm64_raw = await push_image(registry, uploads, repo, image, architecture="arm64")
    index = index_manifest(
        [
            Descriptor(
                OCI_MANIFEST, amd64, len(amd64_raw), {"os": "linux", "architecture": "amd64"}
            ),
            Descriptor(
                OCI_MANIFEST, arm64, len(arm64_raw), {"os": "linux", "architecture": "arm64"}
            ),
        ]
    )
    from support.images import OCI_INDEX

    pushed = await registry.put_manifest(repo, "multi", index, OCI_INDEX)
    await scanner.service.start_image_scan(repo, ImageId(tag="multi"))
    await scanner.drain()
    found = await all_findings(scanner, repo, pushed.manifest.digest)
    assert len(found) == 2 * len(image.expected_findings())
    assert {f["platform"] for f in found} == {"linux/amd64", "linux/arm64"}
    page = await scanner.service.describe_findings(repo, ImageId(pushed.manifest.digest))
    assert page.state.status == COMPLETE
    assert sum(page.state.severity_counts.values()) == len(found)


async def test_continuous_scan_rematches_when_the_database_changes(
    scanner: Scanner,
    registry: RegistryService,
    uploads: UploadService,
    repo: Repository,
    now: list[float],
    store: MetadataStore,
) -> None:
    await scanner.service.put_registry_configuration(
        repo.registry_id,
        "BASIC",
        [{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*"}]}],
    )
    digest, _ = await push_image(registry, uploads, repo, IMAGES["alpine"](), tag="v1")
    await scanner.drain()
    before = {f["name"] for f in await all_findings(scanner, repo, digest)}
    assert "CVE-2023-42363" not in before
    now[0] += 100
    # A new advisory for musl's... no: for busybox (origin of three packages).
    record = json.loads((OSV_FIXTURES / "Alpine" / "ALPINE-CVE-2022-48174.json").read_text())
    record.update(
        id="ALPINE-CVE-2023-42363", upstream=["CVE-2023-42363"], modified="2024-02-01T00:00:00Z"
    )
    report = await scanner.vulndb.import_records([record])
    assert report.added == 1
    # The image's layers are gone: re-matching must work from the stored inventory alone.
    async with store.read() as tx:
        jobs_before = await tx.jobs.job_counts()
    await scanner.drain()
    after = {f["name"] for f in await all_findings(scanner, repo, digest)}
    assert after == before | {"CVE-2023-42363"}
    assert jobs_before.get("queued") == 1


async def test_reimport_is_incremental(scanner: Scanner) -> None:
    report = await scanner.vulndb.import_records(OsvSource(OSV_FIXTURES))
    assert (report.added, report.updated, report.changed) == (0, 0, 0)
    assert report.unchanged == len(OsvSource(OSV_FIXTURES))


async def test_sbom_is_attached_as_a_referrer(
    scanner: Scanner, registry: RegistryService, uploads: UploadService, repo: Repository
) -> None:
    repo = await scan_on_push(repo, scanner)
    digest, _ = await push_image(registry, uploads, repo, IMAGES["debian"](), tag="v1")
    await scanner.drain()
    (referrer,) = await registry.referrers(repo, digest, "application/vnd.cyclonedx+json")
    assert referrer.subject_digest == digest
    document = json.loads(await scanner.service.sbom(repo, ImageId(digest)))
    assert document["bomFormat"] == "CycloneDX"
    names = {c["name"] for c in document["components"]}
    assert {"libc6", "openssh-client", "debian"} <= names
    # The referrer itself is an artifact: no scan for it.
    with pytest.raises(ScanNotFound):
        await scanner.service.describe_findings(repo, ImageId(referrer.digest))
