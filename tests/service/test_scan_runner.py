"""Running scans through the service layer on SQLite and PostgreSQL: the exact findings of every
test image against the OSV fixtures, StartImageScan and the daily quota, unsupported images and
artifacts, failures, and CONTINUOUS_SCAN re-matching."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from cargohold.domain.errors import LimitExceeded
from cargohold.domain.records import Repository
from cargohold.domain.scans import FAILED, IN_PROGRESS, UNSUPPORTED_IMAGE
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import ContentService
from cargohold.service.images import ImageId
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver
from support.images import (
    OCI_CONFIG,
    OCI_MANIFEST,
    Descriptor,
    image_manifest,
)
from support.scan_images import IMAGES, OSV_FIXTURES
from support.scanner import Scanner, push_blob, push_image

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]


@pytest.mark.parametrize("name", sorted(IMAGES))
async def test_each_image_yields_exactly_its_expected_findings(
    name: str, scanner: Scanner, content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    image = IMAGES[name]()
    repo = await scanner.scan_on_push(repo)
    digest, _ = await push_image(content, uploads, repo, image, tag="v1")
    assert await scanner.drain() >= 1
    page = await scanner.findings.describe_findings(repo, ImageId(digest))
    assert page.state.status == image.expected["status"]
    found = await scanner.all_findings(repo, digest)
    got = {(f["name"], f["package_name"], f["package_version"], f["severity"]) for f in found}
    assert got == image.expected_findings()
    assert len(found) == len(got)
    counts: dict[str, int] = {}
    for _, _, _, severity in got:
        counts[severity] = counts.get(severity, 0) + 1
    assert page.state.severity_counts == counts


async def test_start_image_scan_and_the_daily_quota(
    scanner: Scanner,
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    now: list[float],
) -> None:
    digest, _ = await push_image(content, uploads, repo, IMAGES["rocky"](), tag="v1")
    _, state = await scanner.runner.start_image_scan(repo, ImageId(tag="v1"))
    assert state.status == IN_PROGRESS
    await scanner.drain()
    with pytest.raises(LimitExceeded):
        await scanner.runner.start_image_scan(repo, ImageId(digest))
    now[0] += 24 * 3600 + 1
    _, state = await scanner.runner.start_image_scan(repo, ImageId(digest))
    assert state.status == IN_PROGRESS


async def test_unsupported_and_artifacts(
    scanner: Scanner, content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    repo = await scanner.scan_on_push(repo)
    digest, _ = await push_image(content, uploads, repo, IMAGES["unsupported"](), tag="v1")
    await scanner.drain()
    page = await scanner.findings.describe_findings(repo, ImageId(digest))
    assert page.state.status == UNSUPPORTED_IMAGE
    assert page.findings == []


async def test_a_broken_layer_fails_the_scan_with_a_reason(
    scanner: Scanner, content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    import gzip

    from support.images import OCI_LAYER_GZIP

    repo = await scanner.scan_on_push(repo)
    blob = gzip.compress(b"this is not a tar archive" * 50)
    digest_layer = await push_blob(uploads, repo, blob)
    layer = Descriptor(OCI_LAYER_GZIP, digest_layer, len(blob))
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    await push_blob(uploads, repo, config)
    manifest = image_manifest(Descriptor.of(OCI_CONFIG, config), [layer])
    pushed = await content.put_manifest(repo, "broken", manifest, OCI_MANIFEST)
    await scanner.drain()
    page = await scanner.findings.describe_findings(repo, ImageId(pushed.manifest.digest))
    assert page.state.status == FAILED
    assert "tar" in page.state.description


async def test_a_job_that_keeps_failing_ends_failed_not_in_progress(
    scanner: Scanner,
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    storage: FilesystemDriver,
    now: list[float],
) -> None:
    repo = await scanner.scan_on_push(repo)
    image = IMAGES["debian"]()
    digest, _ = await push_image(content, uploads, repo, image, tag="v1")
    # The layer's bytes vanish from storage: every attempt fails with an I/O error.
    from cargohold.domain.digest import Digest
    from cargohold.service.paths import blob_key

    for layer in image.layer_descriptors():
        await storage.delete(blob_key(Digest.parse(layer.descriptor.digest)))
    for _ in range(5):
        await scanner.drain()
        now[0] += 60
    page = await scanner.findings.describe_findings(repo, ImageId(digest))
    assert page.state.status == FAILED
    assert page.state.description.startswith("The scan failed:")


async def test_continuous_scan_rematches_when_the_database_changes(
    scanner: Scanner,
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    now: list[float],
    store: MetadataStore,
) -> None:
    await scanner.configuration.put_registry_configuration(
        repo.registry_id,
        "BASIC",
        [{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*"}]}],
    )
    digest, _ = await push_image(content, uploads, repo, IMAGES["alpine"](), tag="v1")
    await scanner.drain()
    before = {f["name"] for f in await scanner.all_findings(repo, digest)}
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
    after = {f["name"] for f in await scanner.all_findings(repo, digest)}
    assert after == before | {"CVE-2023-42363"}
    assert jobs_before.get("queued") == 1


class Reports:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, bool]] = []
        self.scans: list[tuple[str, dict[str, int]]] = []

    def job_finished(self, kind: str, seconds: float, *, failed: bool) -> None:
        self.jobs.append((kind, failed))

    def scan_finished(
        self, status: str, seconds: float | None, severities: Mapping[str, int]
    ) -> None:
        assert seconds is not None and seconds >= 0
        self.scans.append((status, dict(severities)))

    def decisions_recorded(self, denials: Mapping[str, int], failures: Mapping[str, int]) -> None:
        raise AssertionError("no decisions here")


async def test_each_scan_is_reported_with_its_status_and_findings(
    store: MetadataStore,
    storage: FilesystemDriver,
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    now: list[float],
) -> None:
    reports = Reports()
    scanner = await Scanner.with_fixtures(store, storage, content, uploads, now, observer=reports)
    repo = await scanner.scan_on_push(repo)
    image = IMAGES["debian"]()
    await push_image(content, uploads, repo, image, tag="v1")
    await push_image(content, uploads, repo, IMAGES["unsupported"](), tag="v2")
    await scanner.drain()
    expected: dict[str, int] = {}
    for _, _, _, severity in image.expected_findings():
        expected[severity] = expected.get(severity, 0) + 1
    assert sorted(reports.scans) == sorted(
        [(image.expected["status"], expected), (UNSUPPORTED_IMAGE, {})]
    )
    assert [job for job in reports.jobs if job[0] == "scan"] == [("scan", False)] * 2
