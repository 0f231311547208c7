"""A live cargohold (a real subprocess) and boto3 clients signed with its administrator's key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support.server import RegistryServer


@pytest.fixture(scope="module")
def ecr_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    root = tmp_path_factory.mktemp("ecr-server")
    server = RegistryServer(root / "data", root / "server.log")
    server.start()
    try:
        yield server
    finally:
        if server.running:
            server.stop()


@pytest.fixture(scope="module")
def ecr(ecr_server: RegistryServer) -> Any:
    return ecr_server.ecr_client()
