"""Reading findings through the service layer on SQLite and PostgreSQL: their attributes and
order, and an index answered from its children, per platform."""

from __future__ import annotations

import pytest

from cargohold.domain.records import Repository
from cargohold.domain.scans import COMPLETE
from cargohold.service.content import ContentService
from cargohold.service.images import ImageId
from cargohold.service.uploads import UploadService
from support.images import (
    OCI_MANIFEST,
    Descriptor,
    index_manifest,
)
from support.scan_images import IMAGES
from support.scanner import Scanner, push_image

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]


async def test_findings_carry_cvss_and_the_advisory(
    scanner: Scanner, content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    repo = await scanner.scan_on_push(repo)
    digest, _ = await push_image(content, uploads, repo, IMAGES["languages"](), tag="v1")
    await scanner.drain()
    found = {f["name"]: f for f in await scanner.all_findings(repo, digest)}
    log4shell = found["CVE-2021-44228"]
    assert log4shell["CVSS3_VECTOR"] == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
    assert log4shell["CVSS3_SCORE"] == "10"
    assert log4shell["advisory_id"] == "GHSA-jfh8-c2jp-5v3q"
    assert log4shell["fixed_version"] == "2.15.0"  # the range 2.14.1 falls in
    page = await scanner.findings.describe_findings(repo, ImageId(digest))
    first = page.findings[0]
    assert first.severity == "CRITICAL"
    assert first.uri == "https://nvd.nist.gov/vuln/detail/CVE-2021-44228"
    assert "Log4j" in first.description


async def test_an_index_is_scanned_per_platform(
    scanner: Scanner, content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    image = IMAGES["languages"]()
    amd64, amd64_raw = await push_image(content, uploads, repo, image)
    arm64, arm64_raw = await push_image(content, uploads, repo, image, architecture="arm64")
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

    pushed = await content.put_manifest(repo, "multi", index, OCI_INDEX)
    await scanner.runner.start_image_scan(repo, ImageId(tag="multi"))
    await scanner.drain()
    found = await scanner.all_findings(repo, pushed.manifest.digest)
    assert len(found) == 2 * len(image.expected_findings())
    assert {f["platform"] for f in found} == {"linux/amd64", "linux/arm64"}
    page = await scanner.findings.describe_findings(repo, ImageId(pushed.manifest.digest))
    assert page.state.status == COMPLETE
    assert sum(page.state.severity_counts.values()) == len(found)
