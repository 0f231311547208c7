"""The Alembic migrations build exactly the schema `metadata/schema/` declares, on both
databases, and running them twice changes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cargohold.metadata.database import _driver_url, upgrade
from cargohold.metadata.schema import metadata


@pytest.mark.every_database
def test_migrations_match_the_declared_schema(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)  # idempotent
    engine = sa.create_engine(_driver_url(db_url, asynchronous=False))
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []
