"""The scanning configuration through the service layer on SQLite and PostgreSQL: what it decides
about a push (scan on push, by the repository or a registry rule)."""

from __future__ import annotations

import pytest

from cargohold.domain.errors import ScanNotFound
from cargohold.domain.records import Repository
from cargohold.domain.scans import COMPLETE, IN_PROGRESS
from cargohold.service.content import ContentService
from cargohold.service.images import ImageId
from cargohold.service.uploads import UploadService
from support.scan_images import IMAGES
from support.scanner import Scanner, push_image

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]


async def test_push_without_scan_on_push_queues_nothing(
    scanner: Scanner, content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    digest, _ = await push_image(content, uploads, repo, IMAGES["alpine"](), tag="v1")
    assert await scanner.drain() == 1  # only the import's rematch job
    with pytest.raises(ScanNotFound):
        await scanner.findings.describe_findings(repo, ImageId(digest))


async def test_registry_rule_scans_on_push(
    scanner: Scanner, content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    await scanner.configuration.put_registry_configuration(
        repo.registry_id,
        "BASIC",
        [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "team/*"}]}],
    )
    digest, _ = await push_image(content, uploads, repo, IMAGES["alpine"](), tag="v1")
    state = (await scanner.findings.describe_findings(repo, ImageId(digest))).state
    assert state.status == IN_PROGRESS  # the push returned before the scan ran
    await scanner.drain()
    state = (await scanner.findings.describe_findings(repo, ImageId(digest))).state
    assert state.status == COMPLETE
