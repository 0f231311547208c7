"""The SBOM through the service layer on SQLite and PostgreSQL: attached after a scan as a
referrer of the image, and exported."""

from __future__ import annotations

import json

import pytest

from cargohold.domain.errors import ScanNotFound
from cargohold.domain.records import Repository
from cargohold.service.content import ContentService
from cargohold.service.images import ImageId
from cargohold.service.uploads import UploadService
from support.scan_images import IMAGES
from support.scanner import Scanner, push_image

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]


async def test_sbom_is_attached_as_a_referrer(
    scanner: Scanner, content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    repo = await scanner.scan_on_push(repo)
    digest, _ = await push_image(content, uploads, repo, IMAGES["debian"](), tag="v1")
    await scanner.drain()
    (referrer,) = await content.referrers(repo, digest, "application/vnd.cyclonedx+json")
    assert referrer.subject_digest == digest
    document = json.loads(await scanner.sbom.export(repo, ImageId(digest)))
    assert document["bomFormat"] == "CycloneDX"
    names = {c["name"] for c in document["components"]}
    assert {"libc6", "openssh-client", "debian"} <= names
    # The referrer itself is an artifact: no scan for it.
    with pytest.raises(ScanNotFound):
        await scanner.findings.describe_findings(repo, ImageId(referrer.digest))
