"""The metadata store under test: migrated to the newest schema on the test's database (SQLite,
or PostgreSQL too for a module marked `every_database`), with the registry of `ACCOUNT`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio.to_thread
import pytest

from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore

ACCOUNT = "123456789012"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[MetadataStore]:
    await anyio.to_thread.run_sync(database.upgrade, db_url)
    metadata_store = MetadataStore.from_url(db_url)
    async with metadata_store.write() as tx:
        await tx.registries.ensure_registry(ACCOUNT, "us-east-1", 1.0)
    try:
        yield metadata_store
    finally:
        await metadata_store.close()
