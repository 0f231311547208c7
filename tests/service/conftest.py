"""The service layer on real adapters: a temp SQLite database (or PostgreSQL where a test asks
with `@pytest.mark.parametrize("db_url", ["postgres_url"], indirect=True)`, or a module with
`pytestmark = pytest.mark.every_database`: see `db_url` in tests/conftest.py) and the
filesystem driver, with a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread
import pytest

from cargohold.domain.records import Repository
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import ContentService
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver
from support.scanner import Scanner

ACCOUNT = "123456789012"


@pytest.fixture
def now() -> list[float]:
    """The clock the services read: `now[0]`, moved by the test."""
    return [1_700_000_000.0]


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[MetadataStore]:
    await anyio.to_thread.run_sync(database.upgrade, db_url)
    metadata_store = MetadataStore.from_url(db_url)
    async with metadata_store.write() as tx:
        await tx.registries.ensure_registry(ACCOUNT, "us-east-1", 0.0)
    try:
        yield metadata_store
    finally:
        await metadata_store.close()


@pytest.fixture
def storage(tmp_path: Path) -> FilesystemDriver:
    return FilesystemDriver(tmp_path / "storage")


@pytest.fixture
def content(store: MetadataStore, storage: FilesystemDriver, now: list[float]) -> ContentService:
    return ContentService(store, storage, lambda: now[0], registry_id=ACCOUNT, create_on_push=True)


@pytest.fixture
def uploads(store: MetadataStore, storage: FilesystemDriver, now: list[float]) -> UploadService:
    return UploadService(store, storage, lambda: now[0])


@pytest.fixture
async def repo(content: ContentService) -> Repository:
    return await content.repository_for_push("team/app")


@pytest.fixture
async def scanner(
    store: MetadataStore,
    storage: FilesystemDriver,
    content: ContentService,
    uploads: UploadService,
    now: list[float],
) -> Scanner:
    return await Scanner.with_fixtures(store, storage, content, uploads, now)
