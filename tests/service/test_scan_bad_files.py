"""A layer whose `package.json` nests far deeper than Python's JSON decoder recurses does not
keep the image from being scanned: the file is skipped and the scan COMPLETEs with the findings
of everything else, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import pytest

from cargohold.domain.records import Repository
from cargohold.domain.scans import COMPLETE
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import ContentService
from cargohold.service.images import ImageId
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver
from support.scan_images import IMAGES, File, ScanImage, compress, tar_layer
from support.scanner import Scanner, push_image

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True),
]

DEEP = b"[" * 100_000 + b"]" * 100_000


async def test_a_deeply_nested_package_json_is_skipped_and_the_rest_scanned(
    store: MetadataStore,
    storage: FilesystemDriver,
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    now: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scanner = await Scanner.with_fixtures(store, storage, content, uploads, now)
    alpine = IMAGES["alpine"]()
    evil = compress(tar_layer([File("srv/node_modules/evil/package.json", DEEP)]), "gzip")
    image = ScanImage("alpine", (*alpine.layers, evil))
    repo = await scanner.scan_on_push(repo)
    with caplog.at_level(logging.WARNING, logger="cargohold.scanning.layers"):
        digest, _ = await push_image(content, uploads, repo, image, tag="v1")
        assert await scanner.drain() >= 1
    page = await scanner.findings.describe_findings(repo, ImageId(digest))
    assert page.state.status == COMPLETE == alpine.expected["status"]
    found = await scanner.all_findings(repo, digest)
    got = {(f["name"], f["package_name"], f["package_version"], f["severity"]) for f in found}
    assert got == alpine.expected_findings()
    assert "srv/node_modules/evil/package.json" in caplog.text
    assert "nests deeper than" in caplog.text
