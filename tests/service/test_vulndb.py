"""The vulnerability database through the service layer on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from cargohold.metadata.store import MetadataStore
from cargohold.scanning.osv import OsvSource
from cargohold.service.content import ContentService
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver
from support.scan_images import OSV_FIXTURES
from support.scanner import Scanner

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True),
]


@pytest.fixture
async def scanner(
    store: MetadataStore,
    storage: FilesystemDriver,
    content: ContentService,
    uploads: UploadService,
    now: list[float],
) -> Scanner:
    return await Scanner.with_fixtures(store, storage, content, uploads, now)


async def test_reimport_is_incremental(scanner: Scanner) -> None:
    report = await scanner.vulndb.import_records(OsvSource(OSV_FIXTURES))
    assert (report.added, report.updated, report.changed) == (0, 0, 0)
    assert report.unchanged == len(OsvSource(OSV_FIXTURES))
