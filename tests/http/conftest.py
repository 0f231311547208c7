"""The `/v2/` harness: a Node on a temp data dir (on `db_url` of tests/conftest.py: SQLite,
or PostgreSQL where a test asks with
`@pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True)`), its OCI
front behind an allow-all gatekeeper, and an httpx client speaking ASGI to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cargohold.app import Node
from cargohold.config import Config, load
from oci_harness import AllowAll, FrontApp


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Config:
    """Pushing creates the repository, so each test pushes to names of its choosing."""
    overrides = {"data_dir": str(tmp_path / "data"), "database_url": db_url, "create_on_push": True}
    return load(overrides=overrides, environ={})


@pytest.fixture
async def node(config: Config) -> AsyncIterator[Node]:
    opened = await Node.open(config)
    opened.oci.gatekeeper = AllowAll()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def app(node: Node) -> FrontApp:
    return FrontApp(node.oci)


@pytest.fixture
async def client(app: FrontApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as http:
        yield http
